//! Retrieval metrics with their standard (trec_eval / BEIR) definitions, over the documents a
//! search returned in rank order and the labelled relevance of each query.
//!
//! - nDCG@k: DCG = sum over ranks i = 1..k of rel_i / log2(i + 1) (linear gain, as trec_eval
//!   and BEIR's pytrec_eval compute it), divided by the DCG of the ideal order of all judged
//!   documents.
//! - recall@k: relevant documents (rel > 0) in the top k / all relevant documents.
//! - MRR@k: 1 / rank of the first relevant document within the top k, else 0.
//!
//! Multi-chunk documents score by their best chunk: [`best_chunk_per_document`] keeps each
//! document's first (highest-ranked) appearance.

use std::collections::{HashMap, HashSet};

/// Relevance labels: query id -> (document id -> grade).
pub type Qrels = HashMap<String, HashMap<String, u32>>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub ndcg: f64,
    pub recall: f64,
    pub mrr: f64,
}

/// Document ids in rank order from chunk hits in rank order, each document once.
pub fn best_chunk_per_document<'a>(documents: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    documents
        .into_iter()
        .filter(|d| seen.insert(*d))
        .map(str::to_string)
        .collect()
}

/// The three metrics of one query at cut-off `k`.
pub fn score(ranked: &[String], relevant: &HashMap<String, u32>, k: usize) -> Scores {
    let top = &ranked[..ranked.len().min(k)];
    let grade = |d: &String| relevant.get(d).copied().unwrap_or(0) as f64;
    let dcg: f64 = top
        .iter()
        .enumerate()
        .map(|(i, d)| grade(d) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = relevant.values().map(|&g| g as f64).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    let relevant_count = relevant.values().filter(|&&g| g > 0).count();
    let found = top.iter().filter(|d| grade(d) > 0.0).count();
    let first = top.iter().position(|d| grade(d) > 0.0);
    Scores {
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        recall: if relevant_count > 0 {
            found as f64 / relevant_count as f64
        } else {
            0.0
        },
        mrr: first.map_or(0.0, |i| 1.0 / (i as f64 + 1.0)),
    }
}

/// Mean of each metric over queries.
pub fn mean(scores: &[Scores]) -> Scores {
    let n = scores.len().max(1) as f64;
    Scores {
        ndcg: scores.iter().map(|s| s.ndcg).sum::<f64>() / n,
        recall: scores.iter().map(|s| s.recall).sum::<f64>() / n,
        mrr: scores.iter().map(|s| s.mrr).sum::<f64>() / n,
    }
}

/// BEIR `qrels/*.tsv`: `query-id <tab> corpus-id <tab> score`, with an optional header line.
pub fn parse_qrels(text: &str, file: &str) -> Result<Qrels, String> {
    let mut qrels = Qrels::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() || (n == 0 && fields.first() == Some(&"query-id")) {
            continue;
        }
        let [query, document, grade] = fields[..] else {
            return Err(format!(
                "{file}:{}: expected query-id, corpus-id and score separated by tabs",
                n + 1
            ));
        };
        let grade: u32 = grade.parse().map_err(|_| {
            format!(
                "{file}:{}: score `{grade}` is not a non-negative integer",
                n + 1
            )
        })?;
        qrels
            .entry(query.to_string())
            .or_default()
            .insert(document.to_string(), grade);
    }
    Ok(qrels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hand_computed_scores() {
        // Relevant: a (grade 2), b (grade 1). Ranking: x, a, y, b.
        let relevant: HashMap<String, u32> = [("a".into(), 2), ("b".into(), 1)].into();
        let s = score(&ranked(&["x", "a", "y", "b"]), &relevant, 10);
        // DCG = 2/log2(3) + 1/log2(5) = 1.26186 + 0.43068 = 1.69254
        // IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093 = 2.63093
        assert!((s.ndcg - 1.69254 / 2.63093).abs() < 1e-4, "{s:?}");
        assert_eq!(s.recall, 1.0);
        assert_eq!(s.mrr, 0.5);
        // Cut at 2: b falls out.
        let s = score(&ranked(&["x", "a", "y", "b"]), &relevant, 2);
        assert!((s.ndcg - 1.26186 / 2.63093).abs() < 1e-4, "{s:?}");
        assert_eq!(s.recall, 0.5);
        // Nothing relevant found.
        let s = score(&ranked(&["x", "y"]), &relevant, 10);
        assert_eq!((s.ndcg, s.recall, s.mrr), (0.0, 0.0, 0.0));
    }

    #[test]
    fn a_document_counts_once_at_its_best_chunk() {
        let docs = best_chunk_per_document(["d1", "d2", "d1", "d3", "d2"]);
        assert_eq!(docs, ranked(&["d1", "d2", "d3"]));
    }

    #[test]
    fn qrels_with_header_and_errors_naming_the_line() {
        let q = parse_qrels(
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n",
            "q.tsv",
        )
        .unwrap();
        assert_eq!(q["q1"]["d1"], 1);
        assert_eq!(q["q1"]["d2"], 0);
        let e = parse_qrels("q1\td1\n", "q.tsv").unwrap_err();
        assert!(e.contains("q.tsv:1"), "{e}");
        let e = parse_qrels("q1\td1\thigh\n", "q.tsv").unwrap_err();
        assert!(e.contains("`high`"), "{e}");
    }
}
