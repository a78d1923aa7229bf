//! recording: an in-memory [`Transport`] for tests of code that sends (the runner):
//! it records every call and answers with scripted outcomes.

use std::collections::VecDeque;

use crate::error::DeliveryError;
use crate::{Delivered, Transport};

/// One recorded call to [`Transport::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

/// Records calls; answers each with the next scripted outcome, or with success for
/// every recipient once the script is used up.
#[derive(Debug, Default)]
pub struct RecordingTransport {
    pub sent: Vec<SentMessage>,
    script: VecDeque<Result<Delivered, DeliveryError>>,
}

impl RecordingTransport {
    pub fn new() -> RecordingTransport {
        RecordingTransport::default()
    }

    /// Queues the outcome of a future call.
    pub fn push_outcome(&mut self, outcome: Result<Delivered, DeliveryError>) {
        self.script.push_back(outcome);
    }
}

impl Transport for RecordingTransport {
    fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        self.sent.push(SentMessage {
            envelope_from: envelope_from.to_string(),
            recipients: recipients.to_vec(),
            raw: raw.to_vec(),
        });
        self.script.pop_front().unwrap_or_else(|| {
            Ok(Delivered {
                accepted: recipients.to_vec(),
                refused: Vec::new(),
                reply: "250 2.0.0 recorded".to_string(),
            })
        })
    }
}
