//! Each in-memory node's `f64` bin sums, kept from one level to the next so
//! that of two siblings only the one with fewer rows is summed from its rows:
//! the other is its parent's sums minus the summed sibling's.
//!
//! What the tables hold per feature — bin sums while rows are summed into a
//! zeroed table, running sums over the bins once [`super::row_split`] has
//! accumulated it for the scan — is the caller's business: subtraction is the
//! same for both, and a derived table is as cumulative as its two operands.
//!
//! Summing a node's rows by bin (every row, every dense feature) was, with the
//! split scan, one of the two halves of per-group training. The larger child
//! of each split has at least half its parent's rows; subtracting two
//! `features × bins` tables costs a few thousand vector operations, far less
//! than summing a few hundred rows into ten features. The sums are integers
//! below 2⁵³ held in `f64` ([`super::row_split`]), so the difference is
//! exactly what summing the rows would give, and the trees are unchanged.
//!
//! A table is valid for the features its node sums densely; other ranges may
//! hold an ancestor's sums. Each table records the features it was filled for
//! (a superset of every descendant's dense features, since a child never has
//! more rows than its parent) and only those are zeroed when it is reused.

/// One node's table: `features × stride` slots of `[g, h]`.
#[derive(Debug)]
pub(crate) struct Sums {
    pub slots: Vec<[f64; 2]>,
    /// The features whose ranges may be non-zero.
    filled: Vec<usize>,
}

impl Sums {
    /// Marks `features` as filled (the node is about to sum into them).
    pub fn fill(&mut self, features: impl Iterator<Item = usize>) {
        // Tables are filled once, when taken from the pool.
        debug_assert!(self.filled.is_empty());
        self.filled.extend(features);
    }
}

/// The tables of the nodes of the tree being grown, and zeroed ones to reuse.
#[derive(Debug)]
pub(crate) struct NodeSums {
    stride: usize,
    width: usize,
    by_node: Vec<Option<Sums>>,
    /// `(parent, sibling)` of each child of a split node.
    family: Vec<Option<(u32, u32)>>,
    /// Nodes whose split the grower will search at the current level.
    searched: Vec<bool>,
    free: Vec<Sums>,
}

impl NodeSums {
    /// Tables of `features × stride` slots.
    pub fn new(features: usize, stride: usize) -> Self {
        Self {
            stride,
            width: features * stride,
            by_node: Vec::new(),
            family: Vec::new(),
            searched: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The slot range of `feature` in a table.
    pub fn range(&self, feature: usize) -> std::ops::Range<usize> {
        feature * self.stride..(feature + 1) * self.stride
    }

    /// Starts a new tree: every table goes back to the pool.
    pub fn reset(&mut self) {
        for sums in std::mem::take(&mut self.by_node).into_iter().flatten() {
            self.recycle(sums);
        }
        self.family.clear();
        self.searched.clear();
    }

    /// A zeroed table.
    pub fn zeroed(&mut self) -> Sums {
        self.free.pop().unwrap_or_else(|| Sums {
            slots: vec![[0.0; 2]; self.width],
            filled: Vec::new(),
        })
    }

    /// Zeroes `sums` and keeps it for reuse.
    pub fn recycle(&mut self, mut sums: Sums) {
        for feature in sums.filled.drain(..) {
            let range = feature * self.stride..(feature + 1) * self.stride;
            sums.slots[range].fill([0.0; 2]);
        }
        self.free.push(sums);
    }

    /// Keeps `node`'s table for its children.
    pub fn keep(&mut self, node: u32, sums: Sums) {
        let node = node as usize;
        if self.by_node.len() <= node {
            self.by_node.resize_with(node + 1, || None);
        }
        if let Some(old) = self.by_node[node].replace(sums) {
            self.recycle(old);
        }
    }

    /// Takes `node`'s table, if one was kept.
    pub fn take(&mut self, node: u32) -> Option<Sums> {
        self.by_node.get_mut(node as usize).and_then(Option::take)
    }

    /// Records that `parent` split into `left` and `right`.
    pub fn children(&mut self, parent: u32, left: u32, right: u32) {
        let needed = left.max(right) as usize + 1;
        if self.family.len() < needed {
            self.family.resize(needed, None);
        }
        self.family[left as usize] = Some((parent, right));
        self.family[right as usize] = Some((parent, left));
    }

    /// `node`'s parent and sibling, if it is a child of a recorded split.
    pub fn family(&self, node: u32) -> Option<(u32, u32)> {
        self.family.get(node as usize).copied().flatten()
    }

    /// The nodes whose splits the grower searches next.
    pub fn set_searched(&mut self, level: &[u32]) {
        self.searched.fill(false);
        for &node in level {
            let node = node as usize;
            if self.searched.len() <= node {
                self.searched.resize(node + 1, false);
            }
            self.searched[node] = true;
        }
    }

    /// Whether `node`'s split is searched at this level.
    pub fn is_searched(&self, node: u32) -> bool {
        self.searched.get(node as usize).copied().unwrap_or(false)
    }

    /// `parent −= child` over the child's features: the parent's table
    /// becomes the other child's. The child's features must be among the
    /// parent's (a node with fewer rows sums fewer features densely).
    pub fn subtract(&self, parent: &mut Sums, child: &Sums) {
        for &feature in &child.filled {
            let range = self.range(feature);
            for (p, c) in parent.slots[range.clone()]
                .iter_mut()
                .zip(&child.slots[range])
            {
                p[0] -= c[0];
                p[1] -= c[1];
            }
        }
    }
}
