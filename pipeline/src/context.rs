use std::sync::Arc;

use serde::Serialize;

use crate::dead_letter::{DeadLetter, DeadLetterQueue};
use crate::internal_event::ItemDeadLettered;
use crate::shutdown::Shutdown;
use crate::{FatalError, ItemError, ItemKind, PipelineItem};

/// What the topology hands every stage: its name, the dead-letter queue and the shutdown flag.
#[derive(Clone, Debug)]
pub struct StageContext {
    pub stage: Arc<str>,
    pub shutdown: Shutdown,
    dead_letters: DeadLetterQueue,
}

impl StageContext {
    pub fn new(stage: &str, shutdown: Shutdown, dead_letters: DeadLetterQueue) -> Self {
        Self {
            stage: Arc::from(stage),
            shutdown,
            dead_letters,
        }
    }

    /// Same context, named for another stage.
    pub fn for_stage(&self, stage: &str) -> Self {
        Self {
            stage: Arc::from(stage),
            ..self.clone()
        }
    }

    /// Records that `item`, of the given kind, failed here and why: for what is not a
    /// [`PipelineItem`] (a line a source could not parse, one malformed chunk of a batch file).
    /// Errors only if the dead-letter writer is gone, which means the item would be lost: that
    /// is fatal.
    pub async fn dead_letter<T: Serialize + ?Sized>(
        &self,
        source: &str,
        item_id: &str,
        kind: ItemKind,
        item: &T,
        error: &ItemError,
    ) -> Result<(), FatalError> {
        ItemDeadLettered {
            stage: &self.stage,
            source,
            item_id,
            kind: error.error_type,
            reason: &error.reason,
        }
        .emit();
        let letter = DeadLetter::new(&self.stage, source, item_id, kind, item, error);
        self.dead_letters.send(letter).await
    }

    /// Records that a pipeline item failed here and why; its source, id and kind come from it.
    pub async fn dead_letter_item<T: PipelineItem>(
        &self,
        item: &T,
        error: &ItemError,
    ) -> Result<(), FatalError> {
        self.dead_letter(
            item.source(),
            &item.item_id(),
            item.item_kind(),
            item,
            error,
        )
        .await
    }
}
