//! `own-project [CONFIG] [--teardown]`: the six steps against the account
//! (or local stack) the environment names. See `lib.rs`.

// ANCHOR: main
#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.iter().find(|a| !a.starts_with("--"));
    let path = path.map_or("examples/pipeline.cfg", String::as_str);
    let teardown = args.iter().any(|a| a == "--teardown");
    // A cluster is billed by the hour: run against a real account only when
    // asked to. The local stack points every service at this machine.
    let opted_in = std::env::var("S3_TO_REDSHIFT_TUTORIAL_ON_AWS").is_ok_and(|v| v == "1");
    if !opted_in && !own_project::all_local(|k| std::env::var(k).ok()) {
        eprintln!(
            "error: some service this program calls is not on this machine (AWS_ENDPOINT_URL), \
             so it would create billed resources in a real AWS account; set \
             S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1 to do that"
        );
        std::process::exit(3);
    }
    let result = match own_project::Settings::read(path) {
        Ok(settings) => own_project::run(&settings, teardown).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
// ANCHOR_END: main
