"""Figure panels: overlay colours, heat maps, canvas sizes and the numbers each plot draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps
from matplotlib import pyplot as plt
from matplotlib.colorbar import Colorbar

from synergyseg.errors import InputDataError
from synergyseg.figures.curves import depletion_figure, histories, training_figure
from synergyseg.figures.distributions import distribution_figure, qq_figure
from synergyseg.figures.overlay import (
    OVERLAY_COLOURS,
    heat_overlay,
    outcomes,
    overlay_colours,
    show_outcomes,
    shrunken_overlay,
)
from synergyseg.figures.panels import (
    Showcase,
    gradcam_panel,
    load_showcase,
    panel_size,
    segmentation_panel,
    synergy_panel,
)
from synergyseg.figures.style import new_figure, save_figure
from synergyseg.imageio import read_rgb
from synergyseg.manifests import read_split
from synergyseg.stats import normality

GREEN, BLACK, RED, YELLOW = (OVERLAY_COLOURS[k] for k in ("TP", "TN", "FP", "FN"))


def test_overlay_colours_each_outcome_on_a_hand_made_pair():
    truth = np.array([[1, 1], [0, 0]])
    predicted = np.array([[1, 0], [1, 0]])
    picture = overlay_colours(outcomes(truth, predicted))
    assert picture.dtype == np.uint8 and picture.shape == (2, 2, 3)
    assert [tuple(p) for p in picture.reshape(-1, 3)] == [
        (0, 255, 0),  # TP green
        (255, 255, 0),  # FN yellow
        (255, 0, 0),  # FP red
        (0, 0, 0),  # TN black
    ]
    with pytest.raises(ValueError, match="differ in shape"):
        outcomes(truth, np.zeros((3, 2)))


def test_heat_overlay_blends_jet_over_the_gray_image():
    image = np.full((1, 2, 3), 204, np.uint8)  # gray 0.8
    cam = np.array([[1.0, 0.0]])
    blended = heat_overlay(image, cam, alpha=0.5)
    # jet(1) = dark red (0.5, 0, 0), jet(0) = dark blue (0, 0, 0.5)
    np.testing.assert_allclose(blended[0, 0], [0.65, 0.4, 0.4], atol=1e-6)
    np.testing.assert_allclose(blended[0, 1], [0.4, 0.4, 0.65], atol=1e-6)


def quadrants(height: int, width: int, top: bool) -> np.ndarray:
    """Top half (top=True) or left half (top=False) of an image set to 1."""
    mask = np.zeros((height, width), bool)
    if top:
        mask[: height // 2] = True
    else:
        mask[:, : width // 2] = True
    return mask


@pytest.fixture
def showcase():
    """Two RGB images 40x60: GT = top half; LMI = left half; TII = GT exactly."""
    n, h, w = 2, 40, 60
    truth = np.stack([quadrants(h, w, top=True)] * n)
    lmi = np.stack([quadrants(h, w, top=False)] * n)
    # Grad-CAM maps that differ per model and class: a hot half each
    cams = {"lmi": np.zeros((n, 2, h, w), np.float32), "tii": np.zeros((n, 2, h, w), np.float32)}
    cams["lmi"][:, 0, :, : w // 2] = 1.0  # left
    cams["lmi"][:, 1, : h // 2] = 1.0  # top
    cams["tii"][:, 0, :, w // 2 :] = 1.0  # right
    cams["tii"][:, 1, h // 2 :] = 1.0  # bottom
    choice = pd.DataFrame(
        {
            "slice_id": ["a", "b"],
            "label": ["benign", "malignant"],
            "role": ["tii_ahead", "lmi_ahead+typical"],
            "metric": "dice",
            "lmi": [0.5, 0.5],
            "tii": [1.0, 1.0],
            "delta": [0.5, 0.5],
        }
    )
    rng = np.random.default_rng(0)
    return Showcase(
        dataset="skin",
        regime="split1",
        choice=choice,
        images=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8),
        truth=truth,
        masks={"lmi": lmi, "tii": truth.copy()},
        cams=cams,
        replicates=5,
        layer="decoder.3",
    )


def pixels(width: float, height: float, dpi: int) -> tuple[int, int, int]:
    """PNG array shape of a figure of width x height inches (Agg truncates to whole pixels)."""
    return int(round(height * dpi, 6)), int(round(width * dpi, 6)), 3


def render(fig, tmp_path, dpi=100):
    """Save like the workflow does; return the PNG as RGB and each axes' pixel box."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in fig.axes]
    height_px = fig.get_size_inches()[1] * dpi
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf", dpi)
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    return read_rgb(tmp_path / "f.png"), boxes, height_px


def sample(png, box, height_px, fx, fy):
    """Pixel at fraction (fx, fy) of an axes box, fy measured from the top."""
    x = box.x0 + fx * box.width
    y = height_px - (box.y1 - fy * box.height)
    return tuple(int(v) for v in png[int(y), int(x)])


def test_segmentation_panel_has_its_layout_size_and_the_overlay_colours(showcase, tmp_path):
    fig = segmentation_panel(showcase)
    png, boxes, height_px = render(fig, tmp_path)
    width, height = panel_size(2, 6, 40 / 60)
    assert png.shape == pixels(width, height, 100)
    lmi_overlay = boxes[3]  # row 1, column D (axes are in row-major order)
    corners = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    colours = [sample(png, lmi_overlay, height_px, fx, fy) for fx, fy in corners]
    assert colours == [GREEN, YELLOW, RED, BLACK]  # TP, FN, FP, TN quadrants
    tii_overlay = boxes[5]
    colours = [sample(png, tii_overlay, height_px, fx, fy) for fx, fy in corners]
    assert colours == [GREEN, GREEN, BLACK, BLACK]


def test_errors_one_pixel_wide_keep_their_colour_on_every_side_and_the_pdf_every_pixel(
    tmp_path,
):
    """A 300-pixel overlay in a 195-pixel cell: one square with a 1-pixel false-positive ring
    around it, one whose 1-pixel edge is missed. Sampling keeps or drops a side of a ring by
    pixel phase; averaging paints red on green as the false-negative yellow."""
    truth = np.zeros((300, 300), bool)
    truth[20:130, 20:280] = truth[170:280, 20:280] = True
    predicted = truth.copy()
    predicted[19:131, 19:281] = True  # upper square: false-positive ring
    predicted[170:280, 20:280] = False
    predicted[171:279, 21:279] = True  # lower square: its edge is a false-negative ring
    fig = new_figure(1.3, 1.3)
    ax = fig.add_axes((0, 0, 1, 1))
    show_outcomes(ax, truth, predicted)
    ax.set_axis_off()
    save_figure(fig, tmp_path / "rings.png", tmp_path / "rings.pdf", 150)
    png = read_rgb(tmp_path / "rings.png")
    assert {tuple(c) for c in png.reshape(-1, 3)} <= {GREEN, BLACK, RED, YELLOW}
    n = png.shape[0]  # 195
    for colour, top, bottom in ((RED, 0, n // 2), (YELLOW, n // 2, n)):
        ring = np.all(png[top:bottom] == colour, axis=-1)
        rows, cols = slice(ring.shape[0] // 3, -ring.shape[0] // 3), slice(n // 4, -n // 4)
        middle = ring.shape[0] // 2
        sides = {  # some line of pixels along each side is the ring's colour end to end
            "top": ring[:middle, cols].all(axis=1).any(),
            "bottom": ring[middle:, cols].all(axis=1).any(),
            "left": ring[rows, : n // 2].all(axis=0).any(),
            "right": ring[rows, n // 2 :].all(axis=0).any(),
        }
        assert all(sides.values()), (colour, sides)
    assert b"/Width 300" in (tmp_path / "rings.pdf").read_bytes()


def test_a_shrunken_overlay_shows_the_majority_error_of_each_block():
    TN, TP, FP, FN = range(4)
    codes = np.array(
        [
            [FP, FN, FP, FP],
            [FN, TP, FN, TN],
            [TP, TP, TN, TN],
            [TP, TN, TN, TP],
        ],
        np.uint8,
    )
    shrunk = shrunken_overlay(codes, 2, 2)
    assert [tuple(p) for p in shrunk.reshape(-1, 3)] == [YELLOW, RED, GREEN, BLACK]
    assert (shrunken_overlay(codes, 4, 4) == overlay_colours(codes)).all()  # room: unchanged
    ties = np.array([[FP, FN, FP, FN], [TN, TN, TN, TN]], np.uint8)  # one of each per block
    assert [tuple(p) for p in shrunken_overlay(ties, 1, 2)[0]] == [RED, YELLOW]  # alternating


def test_a_ragged_boundary_shrinks_without_favouring_either_error(rng):
    """A 512-pixel disk whose predicted edge wanders ±1 pixel at random, in a 194-pixel cell:
    as many blocks show its false positives as its false negatives (giving one kind priority
    drew a third of the false-positive blocks as false negatives)."""
    yy, xx = np.mgrid[:512, :512]
    radius = np.hypot(yy - 256, xx - 256)
    truth = radius < 150
    predicted = radius < 150 + rng.normal(0, 1, truth.shape)
    shrunk = shrunken_overlay(outcomes(truth, predicted), 194, 194)
    red = np.all(shrunk == RED, axis=-1).sum()
    yellow = np.all(shrunk == YELLOW, axis=-1).sum()
    assert red > 100 and yellow > 100 and abs(red - yellow) < 0.2 * (red + yellow) / 2


def test_an_enlarged_mask_keeps_sharp_pixels_in_the_png(tmp_path):
    mask = np.zeros((64, 96), np.uint8)
    mask[20:40, 30:70] = 1
    fig = new_figure(1.3, 1.3 * 64 / 96)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mask, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    save_figure(fig, tmp_path / "m.png", tmp_path / "m.pdf", 150)
    assert {tuple(c) for c in read_rgb(tmp_path / "m.png").reshape(-1, 3)} == {BLACK, (255,) * 3}


def test_panels_use_the_figure_fonts():
    fig = new_figure(2, 2)
    ax = fig.add_subplot()
    assert ax.set_title("t").get_fontsize() == 8 and ax.set_xlabel("x").get_fontsize() == 8
    plt.close(fig)


def test_synergy_panel_draws_union_and_intersection(showcase, tmp_path):
    png, boxes, height_px = render(synergy_panel(showcase), tmp_path)
    width, height = panel_size(2, 8, 40 / 60)
    assert png.shape == pixels(width, height, 100)
    corners = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    union, intersection = boxes[5], boxes[7]  # columns F and H
    assert [sample(png, union, height_px, *c) for c in corners] == [GREEN, GREEN, RED, BLACK]
    assert [sample(png, intersection, height_px, *c) for c in corners] == [
        GREEN,
        YELLOW,
        BLACK,
        BLACK,
    ]


def test_gradcam_panel_has_a_colour_bar_and_maps_per_class(showcase, tmp_path):
    fig = gradcam_panel(showcase)
    plt.close(fig)
    bars = [ax for ax in fig.axes if isinstance(getattr(ax, "_colorbar", None), Colorbar)]
    assert len(bars) == 1
    assert "mean of 5 replicates" in bars[0].get_ylabel()
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles[1:] == ["B\nLMI class 0", "C\nLMI class 1", "D\nTII class 0", "E\nTII class 1"]
    showcase.images[:] = 128  # plain gray, so the heat map alone sets the colour
    png, boxes, height_px = render(gradcam_panel(showcase), tmp_path)
    width, height = panel_size(2, 5, 40 / 60, colourbar=True)
    assert png.shape == pixels(width, height, 100)
    hot = {  # where each column's map is 1: (fx, fy) inside, and a point outside
        1: ((0.25, 0.5), (0.75, 0.5)),  # LMI class 0: left half
        2: ((0.5, 0.25), (0.5, 0.75)),  # LMI class 1: top half
        3: ((0.75, 0.5), (0.25, 0.5)),  # TII class 0: right half
        4: ((0.5, 0.75), (0.5, 0.25)),  # TII class 1: bottom half
    }
    for column, (inside, outside) in hot.items():
        red, _, blue = sample(png, boxes[column], height_px, *inside)
        assert red > blue + 40, f"column {column} should be red where its map is 1"
        red, _, blue = sample(png, boxes[column], height_px, *outside)
        assert blue > red + 40, f"column {column} should be blue where its map is 0"


def per_image_table(rng, n=40):
    rows = []
    labels = np.where(np.arange(n) < n // 2, "benign", "malignant")
    for metric in ("auroc", "dice", "sensitivity", "specificity"):
        lmi = np.clip(rng.beta(5, 2, n), 0, 1)
        tii = np.clip(rng.beta(6, 2, n), 0, 1)
        frame = pd.DataFrame({"slice_id": [f"s{i}" for i in range(n)], "label": labels})
        frame["metric"], frame["lmi"], frame["tii"] = metric, lmi, tii
        frame["delta"] = tii - lmi
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def test_qq_plots_draw_scipy_probplot_of_the_recorded_yeo_johnson_transform(rng):
    per_image = per_image_table(rng)
    table = normality(per_image)
    fig = qq_figure(per_image, table, "QQ")
    axes = fig.axes
    assert len(axes) == 8
    values = per_image.loc[per_image["metric"] == "dice", "tii"].to_numpy()
    lam = table.set_index(["metric", "init"]).loc[("dice", "tii"), "yeojohnson_lambda"]
    transformed = sps.yeojohnson(values, lmbda=lam)
    expected_x, expected_y = sps.probplot(sps.zscore(transformed, ddof=1), fit=False)
    points = axes[7].lines[0].get_xydata()  # Dice row, TII after YJ
    np.testing.assert_allclose(points[:, 0], expected_x)
    np.testing.assert_allclose(points[:, 1], expected_y)
    diagonal = axes[7].lines[1].get_xydata()  # the standard normal: y = x
    np.testing.assert_allclose(diagonal[:, 0], diagonal[:, 1])
    assert axes[7].get_title() == "Dice, TII after YJ"


def test_distributions_count_every_image_and_mark_the_medians(rng):
    per_image = per_image_table(rng)
    per_image.loc[(per_image["metric"] == "dice") & (per_image["slice_id"] == "s0"), "lmi"] = np.nan
    tests = pd.DataFrame(
        {"metric": ["auroc", "dice"], "mood_p": [0.01, 0.5], "mood_significant": [True, False]}
    )
    fig = distribution_figure(per_image, tests, "dist")
    assert len(fig.axes) == 6  # all images, benign, malignant × AUROC, Dice
    dice_all = fig.axes[1]
    heights = [p.get_height() for p in dice_all.patches]
    assert sum(heights) == 39 + 40  # LMI has one undefined Dice
    dice = per_image[per_image["metric"] == "dice"]
    medians = sorted(line.get_xdata()[0] for line in dice_all.lines)
    assert medians == pytest.approx(sorted([dice["lmi"].median(), dice["tii"].median()]))
    assert "Mood's median test p = 0.01 *" in fig.axes[0].get_title()
    assert f"LMI {dice['lmi'].median():.3f}" in dice_all.get_title()
    assert "(n = 39 LMI, 40 TII)" in dice_all.get_title()
    few = distribution_figure(per_image, tests, "dist", max_labels=1)
    assert len(few.axes) == 4  # all images and one label: 20 images each, ties go by name
    assert few.axes[2].get_title().startswith("AUROC, label: benign")


def test_training_curves_read_the_history_beside_each_checkpoint(tmp_path):
    paths = []
    for init in ("lmi", "tii"):
        for rep in (1, 2):
            path = tmp_path / "models" / "split1" / init / f"rep{rep}.history.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(
                [
                    {"epoch": e, "train_loss": 1.0 / e + rep, "monitor_loss": 2.0 / e, "seconds": 1}
                    for e in (1, 2, 3)
                ]
            ).to_csv(path, index=False)
            paths.append(path)
    table = histories(paths)
    assert len(table) == 12 and set(table["init"]) == {"lmi", "tii"}
    fig = training_figure(table, ["split1"], "curves")
    lines = fig.axes[0].lines
    assert len(lines) == 8  # 2 inits × 2 replicates × (training, monitor)
    np.testing.assert_allclose(lines[0].get_ydata(), [2.0, 1.5, 1 / 3 + 1])
    (tmp_path / "rep1.csv").write_text("epoch\n1\n")
    with pytest.raises(InputDataError, match="is not named"):
        histories([tmp_path / "rep1.csv"])


def test_depletion_plot_draws_the_medians_per_training_share():
    def tests(lmi, tii, significant):
        return pd.DataFrame(
            {
                "metric": ["auroc", "dice", "sensitivity", "specificity"],
                "lmi_median": lmi,
                "tii_median": tii,
                "mood_significant": significant,
                "dagger_median": [None, "tii", None, None],
            }
        )

    fig = depletion_figure({80: tests(0.9, 0.95, True), 40: tests(0.8, 0.7, False)}, "depletion")
    dice = fig.axes[1]
    lmi_line, tii_line = (line for line in dice.lines if len(line.get_xdata()) == 2)
    assert list(lmi_line.get_xdata()) == [40, 80]
    assert list(lmi_line.get_ydata()) == [0.8, 0.9]
    assert list(tii_line.get_ydata()) == [0.7, 0.95]
    assert [t.get_text() for t in dice.texts] == ["*"]


def test_load_showcase_reads_the_chosen_images_and_refuses_mismatched_files(
    tiny_split, tiny_store, tmp_path
):
    chosen = read_split(tiny_split, "test")["slice_id"].tolist()[:2]
    choice = pd.DataFrame(
        {"slice_id": chosen, "label": "l", "role": "typical", "metric": "dice", "delta": 0.0}
    )
    choice.to_csv(tmp_path / "images.csv", index=False)

    def cam_file(name, ids, side=64):
        np.savez(
            tmp_path / name,
            slice_ids=np.array(ids),
            cam=np.zeros((len(ids), 2, side, side), np.float32),
            mask=np.zeros((len(ids), side, side), bool),
            replicates=np.int64(3),
            layer=np.array("decoder.3"),
        )
        return tmp_path / name

    files = {"lmi": cam_file("lmi.npz", chosen), "tii": cam_file("tii.npz", chosen)}
    showcase = load_showcase(
        "skin", "split1", tmp_path / "images.csv", tiny_split, tiny_store, files
    )
    assert showcase.images.shape == (2, 64, 64, 3) and showcase.truth.shape == (2, 64, 64)
    assert showcase.replicates == 3 and showcase.layer == "decoder.3"
    split = read_split(tiny_split, "test").set_index("slice_id").loc[chosen]
    png = read_rgb(split["image"].iloc[1])  # the PNG copy of the second image
    assert np.array_equal(showcase.images[1], png)

    files["tii"] = cam_file("other.npz", chosen[::-1])
    with pytest.raises(InputDataError, match=r"other\.npz.*holds other images"):
        load_showcase("skin", "split1", tmp_path / "images.csv", tiny_split, tiny_store, files)
    files["tii"] = cam_file("small.npz", chosen, side=32)
    with pytest.raises(InputDataError, match=r"small\.npz.*differ from the slices"):
        load_showcase("skin", "split1", tmp_path / "images.csv", tiny_split, tiny_store, files)
