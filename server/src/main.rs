//! The `baton` binary: parse arguments, hand off to `baton::cli`.

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match baton::cli::parse(&arguments) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("baton: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(baton::cli::run(command));
    std::process::exit(code);
}
