//! The outbound adapter's one error type: what can go wrong setting up calls to providers and
//! webhook receivers (a call that fails is a recorded outcome, not an error).

/// Why the outbound clients could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// A CA file is not PEM.
    #[error("{what}: not PEM certificates ({reason}); give CA certificates as PEM")]
    NotPem {
        /// The setting that named the file.
        what: String,
        /// What the PEM reader said.
        reason: String,
    },
    /// A CA file holds no certificate.
    #[error("{what}: no CERTIFICATE block found; give CA certificates as PEM")]
    NoCertificate {
        /// The setting that named the file.
        what: String,
    },
    /// A certificate was read but cannot be a trust root.
    #[error("a provider CA certificate is not usable: {reason}")]
    UnusableCertificate {
        /// What rustls said.
        reason: String,
    },
    /// TLS could not be set up at all.
    #[error("TLS set-up for providers failed: {reason}")]
    Tls {
        /// What rustls said.
        reason: String,
    },
}

impl OutboundError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            OutboundError::NotPem { .. }
            | OutboundError::NoCertificate { .. }
            | OutboundError::UnusableCertificate { .. } => "invalid_certificate",
            OutboundError::Tls { .. } => "tls_setup",
        }
    }
}
