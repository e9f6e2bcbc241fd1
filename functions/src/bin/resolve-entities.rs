//! `resolve-entities`: the ResolveEntities task: mentions to canonical entities.
//! Its step is `lexpipe::pipeline::task::resolve_entities`, and its app only what that step uses
//! (see `lexpipe_functions::build_app`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::pipeline::task;
use lexpipe::stages::tasks;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app().await?.with_llm()?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::step_with(app, tasks::RESOLVE_ENTITIES, task::resolve_entities, event)
    }))
    .await
}
