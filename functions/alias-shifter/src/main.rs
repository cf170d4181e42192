use alias_shifter::{Config, Deps, handler};
use lambda_runtime::{Error, run, service_fn};
use shared::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config =
        Config::from_env(Env::process()).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let deps = Deps::new(&shared::aws::load().await, config);
    run(service_fn(|event| handler(&deps, event))).await
}
