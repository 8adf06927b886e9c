"""k nearest neighbours on uint8 images, in NumPy alone, as scikit-learn's classifier votes.

``predict(...)`` gives what ``KNeighborsClassifier(n_neighbors=k,
weights="distance")`` gives on the same flattened pixels: euclidean
distance, neighbours weighted by 1/distance, and when a test image has
training images at distance 0, only those vote, equally. Classes with the
same weighted vote go to the lower class, as scikit-learn's do.

Training images at the same distance as the k-th neighbour are taken in
order of index. scikit-learn has no one rule there: for uint8 input (what
the paper's script passed) it keeps whichever ``np.argpartition`` happens
to leave, for floats whichever its parallel heaps keep. So the two can
differ only on a test image whose k-th and (k+1)-th neighbours are exactly
equally far from it.

Memory stays bounded whatever the dataset's size: distances are computed
for one block of training images against one chunk of test images at a
time, and only the best k of each test image are kept between blocks.
NumPy is imported inside the functions, like everywhere in this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Test images per chunk and training images per block. A step holds one
# chunk x block matrix of float32 distances (16 MiB), one block as float32
# (25 MiB at 784 pixels) and a boolean mask (4 MiB): under 50 MiB beside the
# uint8 arrays, for any dataset size. 512 x 8192 is large enough that the
# matrix product runs at full speed on 2 cores (about 130 GFLOP/s here).
TEST_CHUNK = 512
TRAIN_BLOCK = 8192

# Pixels are shifted from 0..255 to -128..127 before the products (distances
# do not change under a shift). Then every product of two pixels is at most
# 128**2 = 16384 in size, and with 784 pixels any partial sum of a dot product
# is at most 784 * 16384 = 12,845,056 < 2**24: an integer that float32 holds
# exactly. So the float32 matrix product is exact, in whatever order the BLAS
# adds, and nothing is lost to cancellation. Identical images come out at
# distance exactly 0, which the zero-distance rule needs, and near ties are
# ordered exactly. Images with more pixels than this bound allows go to
# float64, exact up to 2**53.
SHIFT = 128
FLOAT32_EXACT = 2**24

Progress = Callable[[int], None]  # called with how many distances were just computed


def predict(
    train_x: NDArray[np.uint8],
    train_y: NDArray[np.integer],
    test_x: NDArray[np.uint8],
    *,
    k: int = 4,
    test_chunk: int = TEST_CHUNK,
    train_block: int = TRAIN_BLOCK,
    progress: Progress | None = None,
) -> NDArray[np.int64]:
    """The class scikit-learn's distance-weighted k-NN gives each test image."""
    import numpy as np

    labels = np.asarray(train_y, dtype=np.int64)
    if labels.ndim != 1 or len(labels) != len(train_x):
        raise ValueError(f"{len(train_x)} training images, labels of shape {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be class indices 0, 1, ...")
    index, sq = nearest(
        train_x, test_x, k=k, test_chunk=test_chunk, train_block=train_block, progress=progress
    )
    classes = int(labels.max()) + 1 if len(labels) else 0
    return vote(sq, labels[index], classes)


def vote(
    sq_distances: NDArray[np.int64], neighbour_labels: NDArray[np.int64], classes: int
) -> NDArray[np.int64]:
    """Each row's class by 1/distance-weighted vote of its neighbours, nearest first.

    As scikit-learn's ``_get_weights`` and ``weighted_mode``: a row with any
    neighbour at distance 0 lets only those vote, with weight 1 each; the
    weights of a class are summed in neighbour order (the same float sums);
    the first class with the largest sum, so the lowest index, wins.
    """
    import numpy as np

    dist = np.sqrt(sq_distances.astype(np.float64))
    zero = dist == 0
    with np.errstate(divide="ignore"):
        weights = 1.0 / dist
    exact_rows = zero.any(axis=1)
    weights[exact_rows] = zero[exact_rows]
    n = len(dist)
    votes = np.zeros((n, classes), dtype=np.float64)
    rows = np.arange(n)
    for j in range(dist.shape[1]):
        votes[rows, neighbour_labels[:, j]] += weights[:, j]
    winners: NDArray[np.int64] = np.argmax(votes, axis=1).astype(np.int64)
    return winners


def nearest(
    train_x: NDArray[np.uint8],
    test_x: NDArray[np.uint8],
    *,
    k: int,
    test_chunk: int = TEST_CHUNK,
    train_block: int = TRAIN_BLOCK,
    progress: Progress | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The k nearest training images of each test image, and their squared distances.

    Both arrays are n_test x k, nearest first; equal distances in order of
    training index. Squared distances are exact integers.
    """
    import numpy as np

    train = _flat(train_x, "training")
    test = _flat(test_x, "test")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"{train.shape[1]} pixels per training image, {test.shape[1]} per test")
    if k < 1 or k > len(train):
        raise ValueError(f"k must be between 1 and the {len(train)} training images, not {k}")
    if test_chunk < 1 or train_block < 1:
        raise ValueError("test_chunk and train_block must be at least 1")
    pixels = train.shape[1]
    fits32 = pixels * SHIFT**2 <= FLOAT32_EXACT
    dtype = np.float32 if fits32 else np.float64
    value, index = _search(train, test, k, dtype, test_chunk, train_block, progress)
    if fits32:
        # ||b||**2 - 2ab itself can pass 2**24 for images far apart, and is then
        # rounded (to a multiple of 2 or 4): still in order, but two far images
        # may tie. That matters only when the k-th neighbour is that far (4096
        # or more, of at most 7140 for 28 x 28 images; the 4th neighbours of
        # KMNIST test images are within 3400), and those rows are searched
        # again in float64.
        far = np.flatnonzero(value[:, -1] >= FLOAT32_EXACT)
        if len(far):
            value[far], index[far] = _search(
                train, test[far], k, np.float64, test_chunk, train_block, None
            )
    # ||a - b||**2 = ||a||**2 + (||b||**2 - 2ab), all of them exact integers now.
    sq = value.astype(np.int64) + _norms(test)[:, None]
    # Never negative by the argument above; the clamp only says so in code.
    return index, np.maximum(sq, 0)


def _flat(images: NDArray[np.uint8], what: str) -> NDArray[np.uint8]:
    import numpy as np

    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} images must be uint8 pixels, not {arr.dtype}")
    return arr.reshape(len(arr), int(np.prod(arr.shape[1:])))


def _norms(images: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Squared norms of the shifted images, exactly, a chunk at a time."""
    import numpy as np

    out = np.empty(len(images), dtype=np.int64)
    for i in range(0, len(images), TEST_CHUNK):
        a = images[i : i + TEST_CHUNK].astype(np.int64) - SHIFT
        out[i : i + len(a)] = np.einsum("ij,ij->i", a, a)
    return out


def _search(
    train: NDArray[np.uint8],
    test: NDArray[np.uint8],
    k: int,
    dtype: type[np.floating],
    test_chunk: int,
    train_block: int,
    progress: Progress | None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per test image, the k smallest ``||b||**2 - 2ab`` over training images b, and their indices.

    The training images are the outer loop, so each block is converted to
    floats once. Rows are sorted by (value, training index); a test image's
    own ``||a||**2`` is the same for all b, so that is the order of distances.
    """
    import numpy as np

    n = len(test)
    best = np.full((n, k), np.inf)
    best_index = np.full((n, k), -1, dtype=np.int64)
    for j0 in range(0, len(train), train_block):
        b = train[j0 : j0 + train_block].astype(dtype)
        b -= SHIFT
        b_norms = np.einsum("ij,ij->i", b, b)
        for i0 in range(0, n, test_chunk):
            a = test[i0 : i0 + test_chunk].astype(dtype)
            a -= SHIFT
            s = a @ b.T
            s *= -2
            s += b_norms
            _merge(s, j0, k, best[i0 : i0 + len(a)], best_index[i0 : i0 + len(a)])
            if progress is not None:
                progress(s.size)
    return best, best_index


def _merge(
    s: NDArray[np.floating],
    offset: int,
    k: int,
    best: NDArray[np.float64],
    best_index: NDArray[np.int64],
) -> None:
    """Fold one block's values ``s`` (chunk x block) into the best k so far, in place."""
    import numpy as np

    threshold = best[:, -1]
    if offset < k <= s.shape[1]:
        # Fewer than k images seen yet (the first block): the block's own k-th
        # value bounds what can get in. Later blocks use the best k so far.
        threshold = np.minimum(threshold, np.partition(s, k - 1, axis=1)[:, k - 1])
    # "<=" keeps every image tied with the k-th; the sort below settles ties
    # by training index, where np.argpartition would pick any of them.
    rows, cols = np.nonzero(s <= threshold[:, None])
    n = len(s)
    all_rows = np.concatenate([rows, np.repeat(np.arange(n), k)])
    values = np.concatenate([s[rows, cols].astype(np.float64), best.ravel()])
    indices = np.concatenate([cols.astype(np.int64) + offset, best_index.ravel()])
    order = np.lexsort((indices, values, all_rows))
    # Each row has its k kept entries plus any new ones: its first k after sorting.
    starts = np.searchsorted(all_rows[order], np.arange(n))
    pick = order[starts[:, None] + np.arange(k)]
    best[:] = values[pick]
    best_index[:] = indices[pick]
