"""Face ids across frames: position + embedding matching, re-entry, forgetting, restore after resume."""

import numpy as np

from affectllm.perception.tracking import FaceTracks


def box(cx, cy, side=100):
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def test_two_faces_keep_ids_when_listed_in_any_order():
    rng = np.random.default_rng(0)
    ea, eb = rng.random(128), rng.random(128)
    tr = FaceTracks()
    ids = []
    for i in range(50):
        a = (box(200 + 3 * np.sin(i), 240), ea + 0.05 * rng.random(128))
        b = (box(500, 240 + 4 * np.cos(i)), eb + 0.05 * rng.random(128))
        faces = [a, b] if i % 3 else [b, a]  # the mesh lists faces in no fixed order
        got = tr.assign(i / 25, [f[0] for f in faces], [f[1] for f in faces])
        ids.append(got if faces[0] is a else got[::-1])
    assert sorted(ids[0]) == [0, 1] and all(x == ids[0] for x in ids)


def test_lost_face_comes_back_with_its_id_then_is_forgotten():
    tr = FaceTracks(ttl_s=1.0)
    assert tr.assign(0.0, [box(100, 100)]) == [0]
    assert tr.assign(0.04, []) == [] and [t.face_id for t in tr.missing([])] == [0]
    assert tr.assign(0.5, [box(110, 104)]) == [0]  # back within the ttl, near where it was
    assert tr.assign(2.0, [box(110, 104)]) == [1]  # gone longer than the ttl: a new face


def test_far_face_is_new_even_with_similar_embedding():
    e = np.ones(128)
    tr = FaceTracks()
    assert tr.assign(0.0, [box(100, 100)], [e]) == [0]
    assert tr.assign(0.04, [box(600, 100)], [e]) == [1]


def test_crossing_faces_are_told_apart_by_embedding():
    rng = np.random.default_rng(1)
    ea, eb = np.zeros(128), np.zeros(128)
    ea[:64], eb[64:] = 1, 1
    tr = FaceTracks()
    assert tr.assign(0.0, [box(300, 200), box(340, 200)], [ea, eb]) == [0, 1]
    # both move to the midpoint: position is ambiguous, the embedding decides
    assert tr.assign(0.04, [box(321, 200), box(319, 200)], [eb, ea]) == [1, 0]


def test_restore_continues_ids():
    tr = FaceTracks()
    rows = [{"face_id": "2", "success": "1", "box_x0": "0", "box_y0": "0", "box_x1": "100", "box_y1": "100"},
            {"face_id": "5", "success": "0", "box_x0": "", "box_y0": "", "box_x1": "", "box_y1": ""}]
    tr.restore(rows, 1.0, max_face_id=7)
    assert tr.assign(1.04, [box(52, 50), box(800, 50)]) == [2, 8]
