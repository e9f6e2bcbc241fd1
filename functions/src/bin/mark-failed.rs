//! `mark-failed`: where every Catch leads: records why the document failed (document state, queue row).
//! The step is `lexpipe::pipeline::invoke(app, "mark-failed", input)`; see `lexpipe_functions::step`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::stages::tasks;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::step(app, tasks::MARK_FAILED, event)
    }))
    .await
}
