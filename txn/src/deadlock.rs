//! Distributed deadlock detection, the pure part: from who waits for whom (transactions, as
//! seen in the data nodes' lock views) find the cycles no single PostgreSQL can see, and pick
//! each cycle's victim: its youngest transaction. A cycle counts only when it is seen in two
//! consecutive rounds, so lock views taken at slightly different moments on different nodes
//! never make a victim of plain contention.

use std::collections::{BTreeSet, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// A transaction as the detector knows it: an id of the coordinator's choosing.
pub type TxnId = u64;

/// One round's wait-for graph.
#[derive(Debug, Default, Clone)]
pub struct WaitGraph {
    /// `(waiter, holder)`: the waiter waits for a lock the holder has.
    pub edges: BTreeSet<(TxnId, TxnId)>,
    /// When each transaction started (seconds since any fixed point), for "youngest".
    pub started: HashMap<TxnId, f64>,
}

impl WaitGraph {
    /// Notes that `waiter` waits for `holder` (a transaction never waits for itself here:
    /// its own backends on different nodes do not lock each other out).
    pub fn wait(&mut self, waiter: TxnId, holder: TxnId) {
        if waiter != holder {
            self.edges.insert((waiter, holder));
        }
    }

    /// Notes when `txn` started; the earliest start of its backends counts.
    pub fn started(&mut self, txn: TxnId, at: f64) {
        let e = self.started.entry(txn).or_insert(at);
        if at < *e {
            *e = at;
        }
    }

    /// The sets of transactions that wait for each other in a cycle.
    pub fn cycles(&self) -> Vec<BTreeSet<TxnId>> {
        let mut graph: DiGraph<TxnId, ()> = DiGraph::new();
        let mut index: HashMap<TxnId, NodeIndex> = HashMap::new();
        let mut node = |g: &mut DiGraph<TxnId, ()>, t: TxnId| *index.entry(t).or_insert_with(|| g.add_node(t));
        for &(a, b) in &self.edges {
            let (x, y) = (node(&mut graph, a), node(&mut graph, b));
            graph.add_edge(x, y, ());
        }
        tarjan_scc(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|i| graph[i]).collect())
            .collect()
    }

    /// The youngest transaction of `cycle` (latest start; ties: the highest id).
    pub fn youngest(&self, cycle: &BTreeSet<TxnId>) -> Option<TxnId> {
        cycle.iter().copied().max_by(|a, b| {
            let (x, y) = (self.started.get(a).copied().unwrap_or(f64::MAX), self.started.get(b).copied().unwrap_or(f64::MAX));
            x.total_cmp(&y).then(a.cmp(b))
        })
    }
}

/// The victims of this round: the youngest transaction of each cycle that was also a cycle in
/// the previous round.
pub fn victims(previous: &[BTreeSet<TxnId>], now: &WaitGraph) -> Vec<TxnId> {
    now.cycles().iter().filter(|c| previous.contains(c)).filter_map(|c| now.youngest(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(TxnId, TxnId)], started: &[(TxnId, f64)]) -> WaitGraph {
        let mut g = WaitGraph::default();
        for &(a, b) in edges {
            g.wait(a, b);
        }
        for &(t, at) in started {
            g.started(t, at);
        }
        g
    }

    #[test]
    fn cycles_of_two_and_three_are_found_and_chains_are_not() {
        let two = graph(&[(1, 2), (2, 1)], &[]);
        assert_eq!(two.cycles(), vec![BTreeSet::from([1, 2])]);
        let three = graph(&[(1, 2), (2, 3), (3, 1), (4, 1)], &[]);
        assert_eq!(three.cycles(), vec![BTreeSet::from([1, 2, 3])]);
        let chain = graph(&[(1, 2), (2, 3), (4, 3)], &[]);
        assert!(chain.cycles().is_empty());
        let own = graph(&[(1, 1)], &[]);
        assert!(own.cycles().is_empty(), "a transaction's own backends are no cycle");
    }

    #[test]
    fn the_youngest_is_the_victim_once_the_cycle_is_confirmed() {
        let g = graph(&[(1, 2), (2, 3), (3, 1)], &[(1, 10.0), (2, 30.0), (3, 20.0)]);
        assert!(victims(&[], &g).is_empty(), "a cycle seen once is not confirmed");
        let seen = g.cycles();
        assert_eq!(victims(&seen, &g), vec![2]);
        let mut earlier = g.clone();
        earlier.started(2, 5.0);
        assert_eq!(earlier.youngest(&BTreeSet::from([1, 2, 3])), Some(3), "the earliest start of a transaction counts");
        let other = graph(&[(7, 8), (8, 7)], &[]);
        assert!(victims(&seen, &other).is_empty(), "a different cycle is not confirmed by this one");
    }
}
