//! The transaction mix: the five transaction types and a shuffled deck of 100 cards (45
//! New-Order, 43 Payment, 4 each of Order-Status, Delivery and Stock-Level) that every client
//! deals from, so each hundred transactions hold the mix exactly (clause 5.2.4.2 allows a
//! deck).

use rand::Rng;
use rand::seq::SliceRandom;

/// A TPC-C transaction type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    /// New-Order (clause 2.4).
    NewOrder,
    /// Payment (clause 2.5).
    Payment,
    /// Order-Status (clause 2.6).
    OrderStatus,
    /// Delivery (clause 2.7).
    Delivery,
    /// Stock-Level (clause 2.8).
    StockLevel,
}

impl TxnKind {
    /// Every type, in report order.
    pub const ALL: [TxnKind; 5] =
        [TxnKind::NewOrder, TxnKind::Payment, TxnKind::OrderStatus, TxnKind::Delivery, TxnKind::StockLevel];

    /// Cards of this type in a deck of 100.
    pub fn share(self) -> usize {
        match self {
            TxnKind::NewOrder => 45,
            TxnKind::Payment => 43,
            TxnKind::OrderStatus | TxnKind::Delivery | TxnKind::StockLevel => 4,
        }
    }

    /// Its position in [`TxnKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TxnKind::NewOrder => "New-Order",
            TxnKind::Payment => "Payment",
            TxnKind::OrderStatus => "Order-Status",
            TxnKind::Delivery => "Delivery",
            TxnKind::StockLevel => "Stock-Level",
        }
    }
}

/// A deck of 100 transaction cards, reshuffled when it runs out.
#[derive(Debug)]
pub struct Deck {
    cards: Vec<TxnKind>,
    next: usize,
}

impl Deck {
    /// A fresh deck (shuffled on the first deal).
    pub fn new() -> Self {
        let cards: Vec<TxnKind> = TxnKind::ALL.iter().flat_map(|k| std::iter::repeat_n(*k, k.share())).collect();
        let next = cards.len();
        Self { cards, next }
    }

    /// The next transaction to run.
    pub fn deal(&mut self, rng: &mut impl Rng) -> TxnKind {
        if self.next == self.cards.len() {
            self.cards.shuffle(rng);
            self.next = 0;
        }
        self.next += 1;
        self.cards[self.next - 1]
    }
}

impl Default for Deck {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::stream;

    #[test]
    fn every_hundred_cards_hold_the_mix() {
        let mut rng = stream(9, &[]);
        let mut deck = Deck::new();
        for _ in 0..5 {
            let mut counts = [0usize; 5];
            for _ in 0..100 {
                counts[deck.deal(&mut rng).index()] += 1;
            }
            assert_eq!(counts, [45, 43, 4, 4, 4]);
        }
    }

    #[test]
    fn the_deck_is_shuffled() {
        let mut rng = stream(10, &[]);
        let mut deck = Deck::new();
        let first: Vec<TxnKind> = (0..100).map(|_| deck.deal(&mut rng)).collect();
        let second: Vec<TxnKind> = (0..100).map(|_| deck.deal(&mut rng)).collect();
        assert_ne!(first, second);
        assert!(first[..45].iter().any(|k| *k != TxnKind::NewOrder));
    }
}
