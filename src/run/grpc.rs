//! A `grpc` check's answer, fed to its run.

use super::ProbeRun;
use crate::grpc::GrpcResponse;
use crate::policy::Policy;

impl ProbeRun {
    /// The gRPC call of `slot` answered.
    pub fn grpc_response(
        &mut self,
        policy: &Policy,
        slot: usize,
        response: &GrpcResponse<'_>,
        now_ms: u64,
    ) {
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        let judgement = crate::outcome::grpc::judge(response, s.timeout_ms);
        self.finish(policy, slot, judgement, now_ms);
    }
}
