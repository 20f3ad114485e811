//! A tracking body, any bytes: parsed into elements (every shape the JSS clients send) and run
//! through the default pipeline with the shipped definitions. Errors are fine; a panic is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker_core::{
    body::{parse_elements, Limits},
    definitions::Definitions,
    pipeline::{BatchContext, PipelineBuilder},
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let pipeline = PipelineBuilder::with_defaults().build();
    let Ok(elements) = parse_elements(data, &limits, pipeline.event_keys()) else {
        return;
    };
    let definitions = Definitions::defaults();
    let context = BatchContext {
        definitions: &definitions,
        now: chrono::Utc::now(),
        max_clock_skew: chrono::Duration::minutes(2),
        limits: &limits,
        interaction: None,
        identification: Default::default(),
    };
    let _ = pipeline.run(&elements, &context);
});
