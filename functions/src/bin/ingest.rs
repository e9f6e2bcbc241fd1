//! `ingest`: S3 `ObjectCreated` notifications → one document, one queue row and one
//! state machine execution per document (see `lexpipe::ingest`).

use aws_lambda_events::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use lexpipe::ingest::StateMachine;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lexpipe_functions::init_tracing();
    let app = lexpipe_functions::build_app()
        .await?
        .with_database()
        .await?;
    let machine = StateMachine::from_config(&app.config).await?;
    let (app, machine) = (&app, &machine);
    run(service_fn(move |event: LambdaEvent<S3Event>| {
        lexpipe_functions::ingest(app, machine, event)
    }))
    .await
}
