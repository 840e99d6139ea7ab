//! The answer of a `grpc` check's call.

use super::{CalloutId, Engine, Store};
use crate::grpc::GrpcResponse;

impl Engine {
    /// A gRPC call answered (or closed with an error). Answers to runs
    /// already complete are ignored.
    pub fn on_grpc(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        id: CalloutId,
        response: &GrpcResponse<'_>,
    ) {
        let Some(endpoint) = self.awaited(id) else {
            return;
        };
        let policy = self.policy.clone();
        if let Some(Some(local)) = self.runs.get_mut(endpoint) {
            local.run.grpc_response(&policy, id.slot, response, now);
        }
        self.poll(store, endpoint, now);
    }
}
