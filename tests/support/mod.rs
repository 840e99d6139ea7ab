pub mod deps;
pub mod envoy;
pub mod grpc;
pub mod http;
pub mod observed;
pub mod prometheus;
pub mod stack;
pub mod xds;
