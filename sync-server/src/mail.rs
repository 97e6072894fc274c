//! E-mail through an SMTP relay (lettre, over tokio and rustls): the invitation to the
//! parents' portal. [`MailConfig`] is the relay's URL (`smtps://user:pass@host`,
//! `smtp://host:port?tls=required`, or plain `smtp://127.0.0.1:25` for a relay on the same
//! machine) and the sender; without one, nothing is sent.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one delivery to the relay may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes out and whom it is from. The URL may hold the relay's password, so it never
/// reaches `Debug` or logs.
#[derive(Clone)]
pub struct MailConfig {
    url: String,
    from: Mailbox,
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Mail could not be sent.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The relay URL or an address is not usable.
    #[error("{0}")]
    Config(String),
    /// The relay refused the message or could not be reached (retrying may help).
    #[error("the mail relay did not accept the message ({0}); check --smtp-url and try again")]
    Send(String),
}

impl MailConfig {
    /// A relay at `url` (`smtp://` or `smtps://`), sending as `from` (`Name <addr>` or `addr`).
    ///
    /// # Errors
    /// [`MailError::Config`] when either cannot be used.
    pub fn new(url: &str, from: &str) -> Result<MailConfig, MailError> {
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            return Err(MailError::Config(
                "--smtp-url must start with smtp:// or smtps://".into(),
            ));
        }
        // Checked now, so a wrong URL is reported before anything else is done.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(format!("--smtp-url is not usable: {e}")))?;
        let from = from
            .parse()
            .map_err(|e| MailError::Config(format!("--mail-from is not an address: {e}")))?;
        Ok(MailConfig {
            url: url.to_owned(),
            from,
        })
    }

    /// Sends a plain-text message to one person.
    ///
    /// # Errors
    /// [`MailError`].
    pub async fn send(
        &self,
        to_name: &str,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), MailError> {
        let to = Mailbox::new(
            Some(to_name.to_owned()),
            to.parse()
                .map_err(|e| MailError::Config(format!("{to} is not an e-mail address: {e}")))?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Config(e.to_string()))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(TIMEOUT))
            .build();
        transport
            .send(message)
            .await
            .map_err(|e| MailError::Send(e.to_string()))?;
        Ok(())
    }
}
