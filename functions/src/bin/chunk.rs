//! `chunk`: the Chunk task: splits the document's text into chunks.
//! Its step is `lexpipe::pipeline::task::chunk`, and its app only what that step uses
//! (see `lexpipe_functions::build_app`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::pipeline::task;
use lexpipe::stages::tasks;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::step_with(app, tasks::CHUNK, task::chunk, event)
    }))
    .await
}
