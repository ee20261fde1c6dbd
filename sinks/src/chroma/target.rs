//! The collection a run writes to, resolved once before any source is read: the server is
//! reachable, the collection exists, and it holds vectors of this run's model and dimension.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use kass_pipeline::{EmbeddingModel, FatalError};

use super::client::{ChromaClient, Collection};
use super::config::ChromaConfig;
use super::tombstone_ledger::TombstoneLedger;

pub struct ChromaTarget {
    pub client: ChromaClient,
    pub collection: Collection,
    /// Records per write: `[chroma] batch_size`, capped by the server's `max_batch_size`.
    pub max_batch: usize,
    /// `[chroma] outage_hold_secs`.
    pub outage_hold: std::time::Duration,
    /// The tombstones applied to the collection; opened by [`Self::connect`] (the embed half),
    /// absent for the read-only commands.
    pub ledger: Option<TombstoneLedger>,
}

/// Collection metadata keys recording what the collection holds.
pub const MODEL_KEY: &str = "kass:model";
pub const DIMENSION_KEY: &str = "kass:dimension";

impl ChromaTarget {
    pub async fn connect(
        config: &ChromaConfig,
        model: &EmbeddingModel,
    ) -> Result<Arc<Self>, FatalError> {
        let fatal = |e: String| FatalError::Stage {
            stage: "chroma".into(),
            reason: e,
        };
        let mut client = ChromaClient::new(config).map_err(FatalError::Config)?;
        client.heartbeat().await.map_err(|e| fatal(e.to_string()))?;
        let server_max = client
            .pre_flight()
            .await
            .map_err(|e| fatal(e.to_string()))?;
        let mut metadata = Map::new();
        metadata.insert("hnsw:space".into(), json!("cosine"));
        metadata.insert(MODEL_KEY.into(), json!(model.name));
        metadata.insert(DIMENSION_KEY.into(), json!(model.dimension));
        let collection = client
            .get_or_create_collection(&config.collection, metadata, configuration(model))
            .await
            .map_err(|e| fatal(e.to_string()))?;
        check_model(&collection, model).map_err(|e| FatalError::Config(e.to_string()))?;
        let ledger = TombstoneLedger::open(&client, &config.collection)
            .await
            .map_err(|e| fatal(e.to_string()))?;
        Ok(Arc::new(Self {
            client,
            collection,
            max_batch: config.batch_size.min(server_max).max(1),
            outage_hold: config.outage_hold(),
            ledger: Some(ledger),
        }))
    }

    /// An existing collection, for `kass query` and `kass stats`.
    pub async fn open(config: &ChromaConfig) -> Result<Arc<Self>, FatalError> {
        let client = ChromaClient::new(config).map_err(FatalError::Config)?;
        let collection = client
            .get_collection(&config.collection)
            .await
            .map_err(|e| FatalError::Stage {
                stage: "chroma".into(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| {
                FatalError::Config(format!(
                    "no collection `{}` at {} (run `kass run` first)",
                    config.collection,
                    client.url()
                ))
            })?;
        Ok(Arc::new(Self {
            client,
            collection,
            max_batch: config.batch_size,
            outage_hold: config.outage_hold(),
            ledger: None,
        }))
    }

    /// The newest tombstone version of each of `documents` of `source` that has one (none
    /// without a ledger: a read-only target applies nothing).
    pub async fn tombstone_versions(
        &self,
        source: &str,
        documents: &[&str],
    ) -> Result<
        std::collections::HashMap<String, kass_pipeline::model::DocumentVersion>,
        super::ChromaError,
    > {
        match &self.ledger {
            Some(ledger) => ledger.versions(&self.client, source, documents).await,
            None => Ok(Default::default()),
        }
    }

    /// The model the collection records, if it was written by kass.
    pub fn model(&self) -> Option<EmbeddingModel> {
        model_of(&self.collection)
    }
}

fn model_of(collection: &Collection) -> Option<EmbeddingModel> {
    let metadata = collection.metadata.as_ref()?;
    Some(EmbeddingModel {
        name: metadata.get(MODEL_KEY)?.as_str()?.to_string(),
        dimension: metadata.get(DIMENSION_KEY)?.as_u64()? as usize,
    })
}

/// A collection that cannot take this run's vectors, named.
#[derive(Debug, thiserror::Error)]
pub enum CollectionModelError {
    #[error(
        "collection `{collection}` holds vectors of {held}; this run embeds with {model}: \
         refusing to mix them (set [chroma] collection to another name, or delete the collection)"
    )]
    OtherModel {
        collection: String,
        held: EmbeddingModel,
        model: EmbeddingModel,
    },
    #[error(
        "collection `{collection}` was not created by kass (no kass:model / kass:dimension in \
         its metadata): refusing to write {model} vectors into it"
    )]
    NotKass {
        collection: String,
        model: EmbeddingModel,
    },
}

/// A collection holds one model's vectors: mixing models makes every distance meaningless.
pub fn check_model(
    collection: &Collection,
    model: &EmbeddingModel,
) -> Result<(), CollectionModelError> {
    match model_of(collection) {
        Some(held) if &held == model => Ok(()),
        Some(held) => Err(CollectionModelError::OtherModel {
            collection: collection.name.clone(),
            held,
            model: model.clone(),
        }),
        None => Err(CollectionModelError::NotKass {
            collection: collection.name.clone(),
            model: model.clone(),
        }),
    }
}

/// The collection configuration naming the embedding function a Python client should use for
/// `query_texts`, where Chroma knows one for this model: all-MiniLM-L6-v2 (kass's local model,
/// also Chroma's default) is sentence-transformers'. Other models are left unnamed rather than
/// guessed: a wrong function would embed queries into another space.
pub fn configuration(model: &EmbeddingModel) -> Option<Value> {
    let name = model.name.trim_start_matches("sentence-transformers/");
    (name == "all-MiniLM-L6-v2").then(|| {
        json!({"embedding_function": {
            "type": "known",
            "name": "sentence_transformer",
            "config": {"model_name": name, "device": "cpu", "normalize_embeddings": false, "kwargs": {}}
        }})
    })
}

/// `{"$and": [...]}` over several conditions, the condition itself for one (Chroma wants at
/// least two operands for `$and` / `$or`).
pub fn all_of(mut conditions: Vec<Value>) -> Value {
    if conditions.len() == 1 {
        conditions.pop().expect("one")
    } else {
        json!({"$and": conditions})
    }
}

pub fn any_of(mut conditions: Vec<Value>) -> Value {
    if conditions.len() == 1 {
        conditions.pop().expect("one")
    } else {
        json!({"$or": conditions})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_model_chroma_knows_is_named() {
        let minilm = EmbeddingModel {
            name: "all-MiniLM-L6-v2".into(),
            dimension: 384,
        };
        let named = configuration(&minilm).unwrap();
        assert_eq!(named["embedding_function"]["name"], "sentence_transformer");
        let other = EmbeddingModel {
            name: "voyage-3.5".into(),
            dimension: 1024,
        };
        assert!(configuration(&other).is_none());
    }
}
