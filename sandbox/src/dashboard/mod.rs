//! What `/_cacheback` is drawn from, apart from its controller
//! ([`crate::controllers::dashboard`]) and view ([`crate::views::dashboard`]):
//! the Prometheus text of the app's recorder read back ([`prometheus`]),
//! cacheback's numbers in it ([`stats`]) and the chart of their history
//! ([`chart`]).

pub mod chart;
pub mod prometheus;
pub mod stats;
