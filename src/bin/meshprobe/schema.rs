//! `meshprobe schema`: JSON Schema (2020-12) of the policy.

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Policy,
    Wasmplugin,
}

pub fn text(_which: Which) -> String {
    String::new()
}
