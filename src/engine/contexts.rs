//! The host's contexts in one Wasm VM, as pure bookkeeping: its root
//! contexts (one per plugin configuration), each with its [`Vm`] once
//! configured, and the HTTP contexts whose request still matters to the
//! core. The host keeps one of each and says when contexts start and end.

use super::{Ctx, Stream, Vm};

/// The root contexts of a Wasm VM, with their VM once configured.
#[derive(Default)]
pub struct Roots(Vec<(Ctx, Option<Vm>)>);

impl Roots {
    pub const fn new() -> Roots {
        Roots(Vec::new())
    }

    /// Root `id` started (Envoy may start a plugin's root more than once:
    /// one entry each).
    pub fn start(&mut self, id: Ctx) {
        if !self.0.iter().any(|(r, _)| *r == id) {
            self.0.push((id, None));
        }
    }

    /// Root `id` is configured with `vm`; `false` when it never started.
    pub fn configured(&mut self, id: Ctx, vm: Vm) -> bool {
        let root = self.0.iter_mut().find(|(r, _)| *r == id);
        root.map(|(_, slot)| *slot = Some(vm)).is_some()
    }

    /// The VM of root `id`, once configured.
    pub fn vm(&mut self, id: Ctx) -> Option<&mut Vm> {
        self.0.iter_mut().find(|(r, _)| *r == id)?.1.as_mut()
    }

    /// Root `id` is gone, and its VM with it.
    pub fn end(&mut self, id: Ctx) {
        self.0.retain(|(r, _)| *r != id);
    }
}

/// HTTP contexts with their root and where their request stands: from
/// creation until its headers are handled, then only while the core keeps
/// it ([`Stream::kept`]; few: held probes). A vector, newest last (a
/// request's headers come right after its creation); a B-tree map cost the
/// module 9 KB.
#[derive(Default)]
pub struct Streams(Vec<(Ctx, Stream)>);

impl Streams {
    pub const fn new() -> Streams {
        Streams(Vec::new())
    }

    /// HTTP context `ctx` of root `root` started.
    pub fn start(&mut self, ctx: Ctx, root: Ctx) {
        self.0.push((root, Stream::new(ctx)));
    }

    /// The stream of `ctx` and its root, taken out for a phase of its
    /// request (then [`Streams::keep`]) or for good.
    pub fn take(&mut self, ctx: Ctx) -> Option<(Ctx, Stream)> {
        let at = self.0.iter().rposition(|(_, s)| s.ctx() == ctx)?;
        Some(self.0.swap_remove(at))
    }

    /// A stream after a phase of its request: kept while it matters.
    pub fn keep(&mut self, root: Ctx, stream: Stream) {
        if stream.kept() {
            self.0.push((root, stream));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{engine, Get};
    use super::*;
    use crate::engine::MemStore;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_root_has_one_entry_and_its_vm_once_configured() {
        let mut store = MemStore::new();
        let mut roots = Roots::new();
        roots.start(1);
        roots.start(1);
        assert!(roots.vm(1).is_none(), "not configured yet");
        assert!(roots.configured(1, Vm::new(engine(1, 0, &mut store), 1)));
        assert!(!roots.configured(2, Vm::new(engine(1, 0, &mut store), 2)));
        assert_eq!(roots.vm(1).map(|vm| vm.root), Some(1));
        roots.end(1);
        assert!(roots.vm(1).is_none(), "one entry, gone with its end");
        assert!(roots.0.is_empty());
    }

    #[test]
    fn a_stream_is_kept_only_while_its_request_matters() {
        let mut store = MemStore::new();
        let mut vm = Vm::new(engine(1, 0, &mut store), 1);
        let mut streams = Streams::new();
        for ctx in [7, 8, 9] {
            streams.start(ctx, 1);
        }
        assert!(streams.take(5).is_none());
        // App traffic goes on: not kept.
        let (root, mut app) = streams.take(8).expect("started");
        assert_eq!((root, app.ctx()), (1, 8));
        let get = &mut Get(Some("s3cret"));
        app.on_headers(&mut vm, || 0, &mut store, "/orders", get, true);
        streams.keep(root, app);
        assert!(streams.take(8).is_none());
        // A probe that waits for its run is held: kept until its end.
        let (root, mut probe) = streams.take(7).expect("started");
        probe.on_headers(&mut vm, || 0, &mut store, "/readyz", get, true);
        streams.keep(root, probe);
        assert_eq!(streams.0.len(), 2);
        assert_eq!(streams.take(7).map(|(r, s)| (r, s.ctx())), Some((1, 7)));
        assert_eq!(streams.take(9).map(|(_, s)| s.ctx()), Some(9));
        assert!(streams.0.is_empty());
    }
}
