//! A uniform spatial grid over the field, for "what is within this radius of
//! this point" questions.
//!
//! A game uses it for interest management (which entities a player sees)
//! and for proximity rules (the arena's pickup collection). It is rebuilt from scratch every step with a
//! counting sort into a compressed-sparse-row layout: one offset per cell and
//! one flat vector of entity indices ordered by cell. That layout needs no
//! per-cell allocation, is cache-friendly to scan, and after the first few
//! rebuilds allocates nothing at all.
//!
//! It is not an incremental index (moving one entity means a full rebuild),
//! it does not own the entities it indexes (every call takes the slice), and
//! it knows nothing of entity kinds or game rules: anything with a
//! [`Positioned::position`] can be indexed.

/// Something with a place on the field.
pub trait Positioned {
    /// Its position, in world units.
    fn position(&self) -> (u16, u16);
}

/// The most cells a grid has along one axis. A rebuild costs O(entities +
/// cells), so a tiny cell size on a large field would otherwise make every
/// rebuild walk millions of empty cells; past this bound the cell size is
/// raised instead, which only makes queries test a few more entities.
pub const MAX_CELLS_PER_AXIS: u32 = 128;

/// A uniform grid of square cells covering `0..=width` × `0..=height`.
///
/// Complexity, with n indexed entities and c cells (c ≤
/// [`MAX_CELLS_PER_AXIS`]²):
/// - [`Grid::rebuild`] is O(n + c) time and allocates only when n or c grows
///   past what an earlier rebuild saw;
/// - [`Grid::query`] is O(k + m), where k is the number of cells overlapping
///   the query's bounding square and m the number of entities in them. When
///   the cell size is about the query radius, k ≤ 9 and m is a small
///   constant multiple of the number of hits.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Side of a cell in world units; at least 1, and raised so that neither
    /// axis has more than [`MAX_CELLS_PER_AXIS`] cells.
    cell: u32,
    /// Number of cell columns (x direction).
    cols: u32,
    /// Number of cell rows (y direction).
    rows: u32,
    /// CSR offsets: the entities of cell `c` are `items[starts[c]..starts[c + 1]]`.
    /// Its length is `cols * rows + 1`.
    starts: Vec<u32>,
    /// Entity indices ordered by cell and, within a cell, by index (the
    /// counting sort is stable), which makes query output deterministic.
    items: Vec<u32>,
    /// The position of each entry of `items`, in the same order. Queries
    /// scan this contiguously instead of jumping around the entity slice,
    /// which is most of their speed.
    pos: Vec<[u16; 2]>,
    /// Scratch for the rebuild: the cell of each entity, so the division is
    /// done once per entity rather than once per pass.
    cell_of: Vec<u32>,
    /// Scratch for the rebuild: the next free slot of each cell while items
    /// are being placed.
    cursor: Vec<u32>,
}

impl Grid {
    /// Makes an empty grid over a field `world_width` × `world_height` with
    /// square cells of side `cell` (0 is treated as 1; raised if needed so
    /// that no axis exceeds [`MAX_CELLS_PER_AXIS`] cells).
    pub fn new(world_width: u16, world_height: u16, cell: u16) -> Grid {
        let longest = u32::from(world_width.max(world_height));
        // Positions run 0..=longest, that is longest + 1 distinct values,
        // and `(longest + 1).div_ceil(MAX)` is the smallest side that fits
        // them into MAX cells.
        let min_cell = (longest + 1).div_ceil(MAX_CELLS_PER_AXIS);
        let cell = u32::from(cell).max(1).max(min_cell);
        let cols = u32::from(world_width) / cell + 1;
        let rows = u32::from(world_height) / cell + 1;
        let cells = (cols * rows) as usize;
        Grid {
            cell,
            cols,
            rows,
            starts: vec![0; cells + 1],
            items: Vec::new(),
            pos: Vec::new(),
            cell_of: Vec::new(),
            cursor: Vec::with_capacity(cells),
        }
    }

    /// The side of a cell actually in use, after the minimum and the cap.
    pub fn cell_size(&self) -> u16 {
        // `cell` is either the caller's u16 or a value bounded by
        // (u16::MAX + 1) / MAX_CELLS_PER_AXIS, so it always fits.
        u16::try_from(self.cell).unwrap_or(u16::MAX)
    }

    /// Number of cells along x and along y.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.cols, self.rows)
    }

    /// Number of entities indexed by the last [`Grid::rebuild`].
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the last [`Grid::rebuild`] indexed nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Column of an x coordinate. Positions past the field (which the arena
    /// never produces) land in the last column, so queries stay exact.
    /// Inlined by hand: the generic query is instantiated in the game's
    /// crate, which would otherwise call this across crates for every cell.
    #[inline]
    fn col(&self, x: u32) -> u32 {
        (x / self.cell).min(self.cols - 1)
    }

    /// Row of a y coordinate, clamped like [`Grid::col`].
    #[inline]
    fn row(&self, y: u32) -> u32 {
        (y / self.cell).min(self.rows - 1)
    }

    /// Indexes every entity of `entities` by its position, replacing what
    /// was indexed before. O(n + cells); allocation-free once the buffers
    /// have grown to the largest n seen.
    pub fn rebuild<E: Positioned>(&mut self, entities: &[E]) {
        let cells = (self.cols * self.rows) as usize;

        // Pass 1: the cell of every entity, and a count per cell stored one
        // slot to the right so that the prefix sum below yields start offsets.
        self.starts.clear();
        self.starts.resize(cells + 1, 0);
        self.cell_of.clear();
        for e in entities {
            let (x, y) = e.position();
            let c = self.row(u32::from(y)) * self.cols + self.col(u32::from(x));
            self.cell_of.push(c);
            self.starts[c as usize + 1] += 1;
        }

        // Pass 2: prefix sum, turning counts into start offsets.
        for c in 0..cells {
            self.starts[c + 1] += self.starts[c];
        }

        // Pass 3: place each index at its cell's next free slot. Walking the
        // entities in order keeps each cell's items sorted by index.
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.starts[..cells]);
        self.items.clear();
        self.items.resize(entities.len(), 0);
        self.pos.clear();
        self.pos.resize(entities.len(), [0, 0]);
        for (i, &c) in self.cell_of.iter().enumerate() {
            let slot = &mut self.cursor[c as usize];
            let (x, y) = entities[i].position();
            self.pos[*slot as usize] = [x, y];
            // Entity counts are bounded by u32 because entity indices are
            // u32 in every view.
            self.items[*slot as usize] = i as u32;
            *slot += 1;
        }
    }

    /// Appends to `out` the index of every entity within `radius` of
    /// (`x`, `y`): squared Euclidean distance ≤ `radius`². Hits come in cell
    /// order (row-major), and in index order within a cell.
    ///
    /// `entities` must be the slice given to the last [`Grid::rebuild`]. The
    /// grid answers from its own cell-ordered copy of the positions, so the
    /// slice is only checked, in debug builds, to catch a caller pairing the
    /// grid with the wrong or a resized world.
    ///
    /// `out` may briefly grow by every candidate scanned (about three times
    /// the hits when the cell size is the radius) before being truncated to
    /// the hits, so a reused `out` settles at that capacity.
    pub fn query<E>(&self, x: u16, y: u16, radius: u16, entities: &[E], out: &mut Vec<u32>) {
        debug_assert_eq!(
            entities.len(),
            self.items.len(),
            "query with a slice other than the one last indexed"
        );
        let (x, y, r) = (u32::from(x), u32::from(y), u32::from(radius));
        let r2 = i64::from(r) * i64::from(r);
        let col_lo = self.col(x.saturating_sub(r));
        let col_hi = self.col(x + r);
        let row_lo = self.row(y.saturating_sub(r));
        let row_hi = self.row(y + r);
        for row in row_lo..=row_hi {
            // The cells of one row are contiguous in CSR order, so a row's
            // span is one contiguous run of `items`.
            let first = (row * self.cols + col_lo) as usize;
            let last = (row * self.cols + col_hi) as usize;
            let span = self.starts[first] as usize..self.starts[last + 1] as usize;
            // Write every candidate and advance past it only if it is a hit:
            // a branch here would be mispredicted about a third of the time,
            // and avoiding it makes queries several times faster.
            let base = out.len();
            out.resize(base + span.len(), 0);
            let mut n = base;
            for (&i, &[ex, ey]) in self.items[span.clone()].iter().zip(&self.pos[span]) {
                let dx = i64::from(ex) - i64::from(x);
                let dy = i64::from(ey) - i64::from(y);
                out[n] = i;
                n += usize::from(dx * dx + dy * dy <= r2);
            }
            out.truncate(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test entity: a position.
    #[derive(Clone, Copy, Debug)]
    struct Entity {
        x: u16,
        y: u16,
    }

    impl Positioned for Entity {
        fn position(&self) -> (u16, u16) {
            (self.x, self.y)
        }
    }

    /// A tiny deterministic generator so the randomized tests replay
    /// identically on every run and machine.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u32) -> u16 {
            (self.next() % u64::from(n)) as u16
        }
    }

    /// An entity at (`x`, `y`); the index argument only labels the call.
    fn at(_index: u32, x: u16, y: u16) -> Entity {
        Entity { x, y }
    }

    fn brute(x: u16, y: u16, r: u16, entities: &[Entity]) -> Vec<u32> {
        let r2 = i64::from(r) * i64::from(r);
        (0..entities.len() as u32)
            .filter(|&i| {
                let e = &entities[i as usize];
                let dx = i64::from(e.x) - i64::from(x);
                let dy = i64::from(e.y) - i64::from(y);
                dx * dx + dy * dy <= r2
            })
            .collect()
    }

    fn sorted_query(g: &Grid, x: u16, y: u16, r: u16, entities: &[Entity]) -> Vec<u32> {
        let mut out = Vec::new();
        g.query(x, y, r, entities, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn query_matches_brute_force_on_random_worlds() {
        let mut rng = Lcg(7);
        for &(w, h, cell) in &[
            (2000u16, 2000u16, 300u16),
            (1000, 400, 50),
            (640, 480, 1),
            (0, 0, 10),
            (65535, 65535, 300),
            (100, 3000, 7),
        ] {
            let mut g = Grid::new(w, h, cell);
            let entities: Vec<Entity> = (0..400)
                .map(|i| {
                    let x = rng.below(u32::from(w) + 1);
                    let y = rng.below(u32::from(h) + 1);
                    at(i, x, y)
                })
                .collect();
            g.rebuild(&entities);
            assert_eq!(g.len(), entities.len());
            for &r in &[0u16, 1, 20, 299, 300, 301, 1000, u16::MAX] {
                for q in 0..30 {
                    // Mix random points, entity positions and the corners.
                    let (x, y) = match q {
                        0 => (0, 0),
                        1 => (w, 0),
                        2 => (0, h),
                        3 => (w, h),
                        4..=13 => {
                            let e = entities[rng.below(400) as usize];
                            (e.x, e.y)
                        }
                        _ => (rng.below(u32::from(w) + 1), rng.below(u32::from(h) + 1)),
                    };
                    assert_eq!(
                        sorted_query(&g, x, y, r, &entities),
                        brute(x, y, r, &entities),
                        "w={w} h={h} cell={cell} r={r} at ({x},{y})"
                    );
                }
            }
        }
    }

    #[test]
    fn entities_exactly_on_the_radius_are_included_and_just_past_it_are_not() {
        let mut g = Grid::new(2000, 2000, 100);
        // Centre on a cell corner so the circle crosses cell borders in all
        // four directions; a 3-4-5 triangle puts (1300, 1400) at exactly 500.
        let (cx, cy, r) = (1000u16, 1000u16, 500u16);
        let entities = vec![
            at(0, cx + r, cy),
            at(1, cx - r, cy),
            at(2, cx, cy + r),
            at(3, cx, cy - r),
            at(4, cx + 300, cy + 400),
            at(5, cx - 300, cy - 400),
            at(6, cx + r + 1, cy),
            at(7, cx, cy - r - 1),
            at(8, cx + 300, cy + 401),
            at(9, cx + 354, cy + 354),  // 354² * 2 = 250,632 > 250,000
            at(10, cx + 353, cy + 353), // 353² * 2 = 249,218 ≤ 250,000
            at(11, cx, cy),
        ];
        g.rebuild(&entities);
        assert_eq!(
            sorted_query(&g, cx, cy, r, &entities),
            vec![0, 1, 2, 3, 4, 5, 10, 11]
        );
        assert_eq!(brute(cx, cy, r, &entities), vec![0, 1, 2, 3, 4, 5, 10, 11]);
    }

    #[test]
    fn entities_on_cell_borders_are_found_from_either_side() {
        let cell = 50u16;
        let mut g = Grid::new(500, 500, cell);
        assert_eq!(g.cell_size(), cell);
        // Every entity sits on a cell border line (a multiple of the cell
        // size) or one unit either side of one.
        let mut entities = Vec::new();
        for bx in (0..=500u16).step_by(50) {
            for by in (0..=500u16).step_by(50) {
                for (ox, oy) in [(0i32, 0i32), (-1, 0), (0, -1), (1, 1)] {
                    let x = (i32::from(bx) + ox).clamp(0, 500) as u16;
                    let y = (i32::from(by) + oy).clamp(0, 500) as u16;
                    entities.push(at(entities.len() as u32, x, y));
                }
            }
        }
        g.rebuild(&entities);
        for &(x, y) in &[
            (50u16, 50u16),
            (49, 50),
            (100, 99),
            (0, 500),
            (500, 0),
            (250, 250),
        ] {
            for r in [0u16, 1, 49, 50, 51, 100] {
                assert_eq!(
                    sorted_query(&g, x, y, r, &entities),
                    brute(x, y, r, &entities),
                    "r={r} at ({x},{y})"
                );
            }
        }
        // A radius of 0 on a border point finds exactly the entities there.
        let hits = sorted_query(&g, 50, 50, 0, &entities);
        assert!(!hits.is_empty());
        assert!(
            hits.iter()
                .all(|&i| entities[i as usize].x == 50 && entities[i as usize].y == 50)
        );
    }

    #[test]
    fn query_appends_and_orders_deterministically() {
        let entities: Vec<Entity> = (0..50)
            .map(|i| at(i, (i * 37 % 200) as u16, (i * 11 % 200) as u16))
            .collect();
        let mut g = Grid::new(200, 200, 30);
        g.rebuild(&entities);
        let mut out = vec![u32::MAX];
        g.query(100, 100, 150, &entities, &mut out);
        assert_eq!(out[0], u32::MAX, "query must append, not overwrite");
        let mut again = vec![u32::MAX];
        g.query(100, 100, 150, &entities, &mut again);
        assert_eq!(out, again);
        // Within a cell, indices come out ascending (the sort is stable).
        let mut solo = Vec::new();
        let same_spot: Vec<Entity> = (0..10).map(|i| at(i, 5, 5)).collect();
        g.rebuild(&same_spot);
        g.query(5, 5, 0, &same_spot, &mut solo);
        assert_eq!(solo, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn rebuild_replaces_the_previous_index() {
        let mut g = Grid::new(100, 100, 10);
        let before = vec![at(0, 10, 10), at(1, 90, 90)];
        g.rebuild(&before);
        assert_eq!(sorted_query(&g, 10, 10, 5, &before), vec![0]);
        let after = vec![at(0, 90, 90)];
        g.rebuild(&after);
        assert_eq!(g.len(), 1);
        assert_eq!(sorted_query(&g, 10, 10, 5, &after), Vec::<u32>::new());
        assert_eq!(sorted_query(&g, 90, 90, 0, &after), vec![0]);
        g.rebuild::<Entity>(&[]);
        assert!(g.is_empty());
        assert_eq!(sorted_query(&g, 90, 90, 1000, &[]), Vec::<u32>::new());
    }

    #[test]
    fn cell_count_is_capped_for_tiny_cells() {
        let g = Grid::new(u16::MAX, u16::MAX, 0);
        let (cols, rows) = g.dimensions();
        assert!(
            cols <= MAX_CELLS_PER_AXIS && rows <= MAX_CELLS_PER_AXIS,
            "{cols}x{rows}"
        );
        assert_eq!(g.cell_size(), 512);
        let g = Grid::new(100, 50, 0);
        assert_eq!(g.cell_size(), 1);
        assert_eq!(g.dimensions(), (101, 51));
        let g = Grid::new(2000, 2000, 300);
        assert_eq!(g.dimensions(), (7, 7));
    }

    #[test]
    fn rebuild_stops_allocating_after_warm_up() {
        let mut rng = Lcg(3);
        let mut g = Grid::new(2000, 2000, 300);
        let mut entities: Vec<Entity> = (0..1000).map(|i| at(i, 0, 0)).collect();
        let mut shuffle = |entities: &mut Vec<Entity>| {
            for e in entities.iter_mut() {
                e.x = rng.below(2001);
                e.y = rng.below(2001);
            }
        };
        shuffle(&mut entities);
        g.rebuild(&entities);
        let buffers = |g: &Grid| {
            (
                g.starts.as_ptr(),
                g.items.as_ptr(),
                g.pos.as_ptr(),
                g.cell_of.as_ptr(),
                g.cursor.as_ptr(),
            )
        };
        let warm = buffers(&g);
        for _ in 0..20 {
            shuffle(&mut entities);
            g.rebuild(&entities);
            assert_eq!(buffers(&g), warm, "a steady-state rebuild reallocated");
        }
    }
}
