//! The verdict once every level is analyzed: each level's FROM is one class and each
//! uncorrelated subquery shares the outer class (then the constants of the outer class are the
//! targets); failing that, a statement whose distributed tables are all tied to constants is
//! right on one shard holding every such value.

use super::{Analyzer, JOIN, Proof, Role, SINGLE, SUBLINK, TOP};
use crate::route::{DistKey, Relations};

impl<R: Relations> Analyzer<'_, R> {
    pub(super) fn finish(mut self) -> Result<Proof, String> {
        let mut tops = Vec::new();
        for l in self.levels.iter().filter(|l| l.role == Role::Top) {
            tops.push(*l.members.first().ok_or(TOP)?);
        }
        if let Err(why) = self.check_levels(&tops) {
            return self.single_only(why);
        }
        let &[top] = tops.as_slice() else {
            // A set operation: a pin in one branch says nothing of the others.
            if self.levels.iter().any(|l| l.scalar) {
                return Err(SINGLE.into());
            }
            return Ok(Proof { pins: None, single_only: None });
        };
        // Every row the statement reads has the distribution value of a constant in the outer
        // level's class: those constants are its targets.
        let consts = self.classes.constants_of(top);
        if self.levels.iter().any(|l| l.scalar) && consts.len() != 1 {
            return Err(SINGLE.into());
        }
        Ok(Proof { pins: if consts.is_empty() { self.pins } else { Some(consts) }, single_only: None })
    }

    /// When the levels are not colocated but every distributed table is tied to constants,
    /// the statement is right on one shard holding all those values (and nowhere else).
    fn single_only(&mut self, why: String) -> Result<Proof, String> {
        let mut pins: Vec<DistKey> = Vec::new();
        for i in 0..self.levels.len() {
            for m in self.levels[i].members.clone() {
                let consts = self.classes.constants_of(m);
                if consts.is_empty() && !self.levels[i].anchored {
                    return Err(why);
                }
                for k in consts {
                    if !pins.contains(&k) {
                        pins.push(k);
                    }
                }
            }
        }
        let reason = format!("{why}, unless all its distribution values hash to one shard");
        Ok(Proof { pins: Some(pins), single_only: Some(reason) })
    }

    /// Each level's FROM is one class; each uncorrelated subquery shares the outer class.
    fn check_levels(&mut self, tops: &[usize]) -> Result<(), String> {
        for i in 0..self.levels.len() {
            let members = self.levels[i].members.clone();
            let Some(&first) = members.first() else { continue };
            let root = self.classes.find(first);
            if members.iter().any(|&m| self.classes.find(m) != root) {
                return Err(JOIN.into());
            }
            let l = &self.levels[i];
            if l.role == Role::Sublink && !l.anchored && !tops.iter().any(|&t| self.classes.find(t) == root) {
                return Err(SUBLINK.into());
            }
        }
        Ok(())
    }
}
