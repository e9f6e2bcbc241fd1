//! `health`: the check `lexpipe health` makes (Redis, documents stuck, failed Textract
//! jobs), returned as JSON and printed as a CloudWatch metric line for the alarms.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let config = lexpipe_functions::load_config().await?;
    // A database that cannot be opened is reported, not a failed cold start.
    let opts = lexpipe_functions::app_options();
    let (app, db_problem) = lexpipe::health::app_for(config, opts).await?;
    let (app, db_problem) = (&app, db_problem.as_deref());
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::health(app, db_problem, event)
    }))
    .await
}
