"""Go's math/rand port (``schedulers/gpu/gorand.py``) against values printed by Go 1.19's
``math/rand`` (``rand.New(rand.NewSource(seed))``, the calls below in this order)."""

from __future__ import annotations

import pytest

from schedulers.gpu.gorand import GoRand, NumpyRandom

# seed -> Int63(), Int31n(1000), Intn(8152), Int63n(1e15), Float64(), Perm(10),
#         then Shuffle of [0..11], Uint32(), Int31n(1<<20)
GO = {
    42: (3440579354231278675, 987, 4996, 12586526624009, 0.043818458599374305, [3, 5, 9, 6, 8, 1, 4, 7, 0, 2],
         [11, 3, 4, 6, 1, 2, 0, 9, 8, 10, 7, 5], 3980526004, 169703),
    0: (8717895732742165505, 514, 6057, 233450539197794, 0.36758720663245853, [5, 1, 9, 8, 0, 3, 6, 4, 7, 2],
        [4, 1, 11, 9, 5, 10, 2, 6, 7, 0, 8, 3], 1726138304, 335312),
    -7: (747107023976529931, 928, 7130, 608651260322299, 0.301751104991933, [8, 4, 1, 3, 0, 7, 9, 5, 2, 6],
         [2, 5, 8, 10, 7, 4, 0, 6, 11, 1, 3, 9], 2486287201, 64285),
    51: (3893522058333705853, 47, 6560, 690084447539553, 0.7373427806347335, [4, 8, 2, 7, 0, 9, 6, 5, 3, 1],
         [8, 9, 7, 0, 1, 4, 2, 5, 10, 11, 3, 6], 119661874, 687810),
    1 << 40: (5470237361722394362, 600, 5977, 541666764780662, 0.8322283838373143, [6, 2, 9, 5, 7, 0, 4, 1, 3, 8],
              [3, 0, 4, 7, 10, 11, 2, 5, 6, 8, 9, 1], 1643314608, 868764),
}


@pytest.mark.parametrize("seed", sorted(GO))
def test_stream_matches_go(seed):
    r = GoRand(seed)
    got = (r.int63(), r.int31n(1000), r.intn(8152), r.int63n(10**15), r.float64(), r.perm(10))
    x = r.shuffled(list(range(12)))
    got += (x, r.uint32(), r.int31n(1 << 20))
    assert got == GO[seed]


def test_invalid_arguments():
    r = GoRand(1)
    for f in (r.intn, r.int31n, r.int63n):
        with pytest.raises(ValueError):
            f(0)


def test_numpy_adapter_is_a_permutation_source():
    r = NumpyRandom(3)
    assert sorted(r.perm(50)) == list(range(50))
    assert sorted(r.shuffled(list(range(20)))) == list(range(20))
    assert all(0 <= r.intn(7) < 7 for _ in range(100))
