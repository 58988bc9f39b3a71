//! The `gopigo` command.
fn main() {}
