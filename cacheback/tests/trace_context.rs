//! Traces (feature `opentelemetry`): a lookup and a refresh are spans inside
//! the request's trace, and a refresh run by a worker is a child of the
//! lookup that queued it, through the trace context the payload carries.

use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::{Cacheback, FetchError, Job, ManualClock};
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone)]
struct Greeting;

impl Job for Greeting {
    type Args = (String,);
    type Output = String;

    async fn fetch(&self, (name,): &(String,)) -> Result<String, FetchError> {
        Ok(format!("hello {name}"))
    }

    fn lifetime(&self) -> Duration {
        Duration::from_secs(60)
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

fn named<'a>(spans: &'a [SpanData], name: &str, mode: Option<&str>) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|s| s.name == name && mode.is_none_or(|m| attribute(s, "mode").as_deref() == Some(m)))
        .collect()
}

#[test]
fn a_queued_refresh_continues_the_trace_of_the_lookup_that_queued_it() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("cacheback=debug,trace_context=info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));

    let queue = InProcessQueue::builder().manual().build();
    let payloads = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let clock = ManualClock::at(1_700_000_000.0);
            let cache = Cacheback::builder()
                .clock(clock.clone())
                .queue(queue.clone())
                .register(|_| Ok(Greeting))
                .build()
                .unwrap();
            let greeting = cache.job(Greeting);
            let args = ("bob".to_owned(),);
            // A request: a MISS fetched in the call (a synchronous refresh),
            // then, a minute later, a STALE read that queues one.
            async {
                greeting.get(&args).await.unwrap();
                clock.advance(Duration::from_secs(61));
                greeting.get(&args).await.unwrap();
            }
            .instrument(tracing::info_span!("request"))
            .await;
            let payloads = queue.pending_payloads();
            // The worker, outside the request.
            assert_eq!(queue.run_pending().await, 1);
            payloads
        })
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let trace = payloads[0].trace.as_ref().expect("the payload carries the trace context");
    assert!(trace.get("traceparent").is_some_and(|t| t.starts_with("00-")), "{trace:?}");

    let [request] = named(&spans, "request", None)[..] else { panic!("one request span: {spans:#?}") };
    let lookups = named(&spans, "cacheback.lookup", None);
    assert_eq!(lookups.len(), 2, "{spans:#?}");
    for lookup in &lookups {
        assert_eq!(lookup.span_context.trace_id(), request.span_context.trace_id());
        assert_eq!(lookup.parent_span_id, request.span_context.span_id());
        assert_eq!(attribute(lookup, "job").as_deref(), Some(Greeting::name().as_ref()));
    }
    let statuses: Vec<_> = lookups.iter().filter_map(|s| attribute(s, "status")).collect();
    assert_eq!(statuses, ["MISS", "STALE"]);

    // The MISS's refresh ran in the lookup, inside its span.
    let [sync] = named(&spans, "cacheback.refresh", Some("sync"))[..] else { panic!("{spans:#?}") };
    let miss = lookups.iter().find(|s| attribute(s, "status").as_deref() == Some("MISS")).unwrap();
    assert_eq!(sync.parent_span_id, miss.span_context.span_id());
    assert_eq!(attribute(sync, "outcome").as_deref(), Some("ok"));

    // The queued one ran in the worker: same trace, child of the STALE lookup.
    let [queued] = named(&spans, "cacheback.refresh", Some("queued"))[..] else { panic!("{spans:#?}") };
    let stale = lookups.iter().find(|s| attribute(s, "status").as_deref() == Some("STALE")).unwrap();
    assert_eq!(queued.span_context.trace_id(), request.span_context.trace_id());
    assert_eq!(queued.parent_span_id, stale.span_context.span_id());
    assert_ne!(queued.parent_span_id, SpanId::INVALID);
    assert_eq!(attribute(queued, "outcome").as_deref(), Some("ok"));
}

#[test]
fn without_a_trace_nothing_is_carried() {
    let queue = InProcessQueue::builder().manual().build();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let cache = Cacheback::builder().queue(queue.clone()).build().unwrap();
        cache.job(Greeting).async_refresh(&("ann".to_owned(),)).await.unwrap();
    });
    let payloads = queue.pending_payloads();
    assert_eq!(payloads[0].trace, None);
    let json = serde_json::to_value(&payloads[0]).unwrap();
    assert!(json.get("trace").is_none(), "absent from the payload: {json}");
}
