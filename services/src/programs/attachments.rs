//! Documents as program items: a coach attaches a document of theirs (an
//! upload of kind `document`: a PDF, an image) to a program
//! ([`ProgramService::own_document`] checks it), and whoever holds the
//! program opens it with `media_link`
//! ([`ProgramService::entitled_to_attachment`], asked by the gateway).

use chalktalk_actors::store::StoreError;
use chalktalk_protocol::{MediaKind, MediaStage};

use super::{ProgramError, ProgramService};

impl ProgramService {
    /// `asset` must be a ready document of `coach` (when this node keeps
    /// assets).
    pub(crate) async fn own_document(&self, coach: &str, asset: &str) -> Result<(), ProgramError> {
        const FIELD: &str = "items.asset";
        if !chalktalk_protocol::valid_id(asset) {
            return Err(ProgramError::invalid(FIELD, "an asset id"));
        }
        let Some(m) = &self.media else {
            return Ok(());
        };
        match m.asset(asset).await? {
            Some(a) if a.owner == coach && a.kind == MediaKind::Document => {
                if a.stage == MediaStage::Ready {
                    Ok(())
                } else {
                    Err(ProgramError::invalid(
                        FIELD,
                        format!("{asset} is not ready"),
                    ))
                }
            }
            Some(a) if a.owner == coach => Err(ProgramError::invalid(
                FIELD,
                format!("{asset} is not a document (upload it with kind `document`)"),
            )),
            _ => Err(ProgramError::invalid(FIELD, "not an asset of yours")),
        }
    }

    /// Does `user` hold an entitlement in force to a program of `owner`
    /// that attaches document `asset`?
    pub async fn entitled_to_attachment(
        &self,
        user: &str,
        owner: &str,
        asset: &str,
    ) -> Result<bool, StoreError> {
        self.holds_program(user, |p| {
            p.coach == owner && p.attachments().any(|a| a == asset)
        })
        .await
    }
}
