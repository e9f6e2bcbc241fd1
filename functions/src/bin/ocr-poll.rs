//! `ocr-poll`: the OcrPoll task: asks whether the Textract job is done.
//! The step is `lexpipe::pipeline::invoke(app, "ocr-poll", input)`; see `lexpipe_functions::step`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::stages::tasks;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::step(app, tasks::OCR_POLL, event)
    }))
    .await
}
