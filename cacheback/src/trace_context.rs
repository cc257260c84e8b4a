//! The trace context a refresh carries from the request that queued it to
//! the worker that runs it ([`RefreshPayload::trace`](crate::queue::RefreshPayload::trace)).
//!
//! With feature `opentelemetry`, the context of the current span (as
//! `tracing-opentelemetry` sees it) is written with the application's global
//! text-map propagator (W3C Trace Context with `opentelemetry_sdk`'s
//! `TraceContextPropagator`), and the worker's `cacheback.refresh` span is
//! made its child. Without the feature, or without a valid current trace,
//! nothing is carried.

use std::collections::BTreeMap;

/// Trace headers: `traceparent`, `tracestate`.
pub(crate) type Carrier = BTreeMap<String, String>;

/// The current span's trace context, if there is one to propagate.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<Carrier> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Headers(Carrier::new());
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier)
    });
    Some(carrier.0).filter(|headers| !headers.is_empty())
}

/// Without feature `opentelemetry`, nothing is propagated.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current() -> Option<Carrier> {
    None
}

/// Makes `span` a child of the context in `carrier`, if any.
#[cfg(feature = "opentelemetry")]
pub(crate) fn adopt(span: &tracing::Span, carrier: Option<&Carrier>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let Some(carrier) = carrier else { return };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(carrier.clone()))
    });
    if let Err(err) = span.set_parent(parent) {
        tracing::debug!(target: "cacheback", error = %err, "the refresh span cannot adopt the queued trace context");
    }
}

/// Without feature `opentelemetry`, nothing is propagated.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn adopt(_span: &tracing::Span, _carrier: Option<&Carrier>) {}

/// The carrier as OpenTelemetry's propagators read and write it (they come
/// with impls for `HashMap` only; the payload keeps a `BTreeMap` so that its
/// JSON is stable).
#[cfg(feature = "opentelemetry")]
struct Headers(Carrier);

#[cfg(feature = "opentelemetry")]
impl opentelemetry::propagation::Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

#[cfg(feature = "opentelemetry")]
impl opentelemetry::propagation::Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
