//! `ocr-start`: the OcrStart task: starts reading every page (the text layer, or a Textract job).
//! Its step is `lexpipe::pipeline::task::ocr_start`, and its app only what that step uses
//! (see `lexpipe_functions::build_app`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::pipeline::task;
use lexpipe::stages::tasks;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app()
        .await?
        .with_database()
        .await?
        .with_textract()
        .await;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        lexpipe_functions::step_with(app, tasks::OCR_START, task::ocr_start, event)
    }))
    .await
}
