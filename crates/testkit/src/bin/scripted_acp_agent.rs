//! `scripted-acp-agent`: an ACP agent over stdio that follows a JSON script, for tests of
//! baton's ACP client. The script format is documented in `testkit::scripted_agent`.

fn main() {
    std::process::exit(testkit::scripted_agent::run());
}
