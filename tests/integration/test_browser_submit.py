"""The submit page in Debian's Chromium against the real system: what is checked before anything is
sent, the chain builder, "run again with this chain", accessibility."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from imagepipe.core.operations import OPERATIONS
from jobs.models import Job
from tests.images import DATA

from .browser import DESKTOP, PHONE, logged_in, serious_violations
from .conftest import PIECE_BYTES

pytestmark = pytest.mark.integration
JOB_PAGE = re.compile(r"/jobs/([0-9a-f-]{36})/$")


def submit_page(chromium, system, viewport=DESKTOP) -> tuple[Page, list[str]]:
    """Alice on the submit page, and the job submissions the page sends, listed as they happen."""
    page = logged_in(chromium, system, "alice", "alice-pass", viewport)
    posts: list[str] = []

    def sent(request):
        if request.method == "POST" and request.url.endswith("/api/jobs/"):
            posts.append(request.url)

    page.on("request", sent)
    page.goto(f"{system.url}/jobs/new/")
    expect(page.locator('#chain li[data-op="gaussian_blur"]')).to_have_count(1)  # the catalogue is in
    return page, posts


def add_step(page: Page, op: str) -> None:
    page.select_option("#add-op", op)
    page.click("#add-step")


def submitted_job(page: Page) -> Job:
    expect(page).to_have_url(JOB_PAGE, timeout=15_000)  # an upload in pieces, then the job
    found = JOB_PAGE.search(page.url)
    assert found is not None
    return Job.objects.get(pk=found[1])


def test_double_clicking_start_creates_one_job(api, system, chromium):
    page, posts = submit_page(chromium, system)
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    page.dblclick("#start")  # nothing appears above the button, so both clicks land on it
    job = submitted_job(page)
    assert len(posts) == 1
    assert list(Job.objects.values_list("pk", flat=True)) == [job.pk]


def test_a_refused_upload_says_why_and_start_works_again(api, system, chromium, tmp_path):
    page, posts = submit_page(chromium, system)
    (tmp_path / "notes.png").write_text("not a picture")
    page.set_input_files("#id_image", str(tmp_path / "notes.png"))
    page.click("#start")
    expect(page.locator("#form-error")).to_contain_text("not an image in a supported format")
    expect(page.locator("#start")).to_be_enabled()
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    page.click("#start")
    assert submitted_job(page).original_name == "coffee.png"
    assert len(posts) == 2


def pieces_sent(page: Page) -> list[int]:
    """The offsets of the resumable upload's pieces the page sends, as it sends them."""
    offsets: list[int] = []

    def sent(request):
        if request.method == "PATCH":
            offsets.append(int(request.headers["upload-offset"]))

    page.on("request", sent)
    return offsets


@pytest.fixture
def system_storage(system, settings):
    """Files as the system stored them."""
    settings.MEDIA_ROOT = system.env["MEDIA_ROOT"]


def test_a_large_file_goes_in_pieces_and_a_dropped_one_is_sent_again(api, system, chromium, system_storage):
    page, posts = submit_page(chromium, system)
    offsets = pieces_sent(page)
    dropped: list[int] = []

    def drop_the_second_once(route):
        if route.request.method == "PATCH" and not dropped and route.request.headers["upload-offset"] != "0":
            dropped.append(int(route.request.headers["upload-offset"]))
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/uploads/*/", drop_the_second_once)
    page.set_input_files("#id_image", str(DATA / "coffee.png"))  # 466,706 bytes: 4 pieces
    page.click("#start")
    job = submitted_job(page)
    assert job.original.read() == (DATA / "coffee.png").read_bytes()
    assert dropped == [PIECE_BYTES]
    assert offsets == [0, PIECE_BYTES, PIECE_BYTES, 2 * PIECE_BYTES, 3 * PIECE_BYTES]
    assert len(posts) == 1


def test_an_upload_cut_off_by_a_reload_goes_on_from_where_it_stopped(api, system, chromium, system_storage):
    page, _ = submit_page(chromium, system)
    page.route(
        "**/api/uploads/*/",
        lambda route: (
            route.abort()
            if route.request.method == "PATCH" and route.request.headers["upload-offset"] != "0"
            else route.continue_()
        ),
    )
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    page.click("#start")
    expect(page.locator("#upload-status")).to_contain_text("Connection lost at 28 %")
    page.unroute("**/api/uploads/*/")
    page.reload()
    expect(page.locator('#chain li[data-op="gaussian_blur"]')).to_have_count(1)
    offsets = pieces_sent(page)
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    page.click("#start")
    job = submitted_job(page)
    assert job.original.read() == (DATA / "coffee.png").read_bytes()
    assert offsets == [PIECE_BYTES, 2 * PIECE_BYTES, 3 * PIECE_BYTES]  # the first piece was not sent again


def test_an_emptied_parameter_is_named_and_nothing_is_sent(api, system, chromium):
    page, posts = submit_page(chromium, system)
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    radius = page.get_by_label("radius")
    radius.fill("")
    page.click("#start")
    expect(page.locator("#form-error")).to_have_text("Step 1 (gaussian_blur): radius is empty.")
    expect(radius).to_have_attribute("aria-invalid", "true")
    expect(radius).to_be_focused()
    radius.fill("3")
    expect(radius).not_to_have_attribute("aria-invalid", "true")
    assert posts == [] and not Job.objects.exists()
    page.click("#start")
    assert submitted_job(page).operations == [{"op": "gaussian_blur", "radius": 3.0}]


def test_the_tile_size_is_bounded_and_nothing_is_drawn_or_sent_outside(api, system, chromium, settings):
    page, posts = submit_page(chromium, system)
    tile_size = page.locator("#id_tile_size")
    expect(tile_size).to_have_attribute("min", str(settings.TILE_SIZE_MIN))
    expect(tile_size).to_have_attribute("max", str(settings.TILE_SIZE_MAX))
    expect(page.locator(".settings .range").first).to_have_text("16–2048")
    expect(page.locator("#grid")).to_be_hidden()  # no empty box before a file is chosen
    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    expect(page.locator("#grid")).to_be_visible()
    expect(page.locator("#grid-info")).to_have_text("600 × 400 px → 2 × 1 = 2 tiles of 512 px")

    tile_size.fill("5")
    expect(page.locator("#grid-info")).to_have_text("Tile size must be between 16 and 2048 px.")
    expect(page.locator("#grid")).to_be_hidden()
    page.click("#start")
    expect(page.locator("#form-error")).to_have_text("Tile size must be between 16 and 2048.")
    expect(tile_size).to_have_attribute("aria-invalid", "true")
    assert posts == []
    tile_size.fill("200")
    expect(page.locator("#grid-info")).to_have_text("600 × 400 px → 3 × 2 = 6 tiles of 200 px")
    page.click("#start")
    assert submitted_job(page).tiles_total == 6


def test_each_step_shows_its_help_and_ranges_and_moves_by_keyboard(api, system, chromium):
    page, posts = submit_page(chromium, system)
    blur = page.locator('#chain li[data-op="gaussian_blur"]')
    expect(blur.locator(".help")).to_have_text(OPERATIONS["gaussian_blur"].description)
    expect(blur.locator(".help")).to_be_visible()
    expect(blur.locator(".range")).to_have_text("0–50")
    expect(blur.locator(".range")).to_be_visible()
    add_step(page, "median")
    add_step(page, "grayscale")
    expect(page.locator('#chain li[data-op="median"] .range')).to_have_text("3–15, odd")
    expect(page.get_by_role("button", name="Remove median")).to_be_visible()

    up = page.get_by_role("button", name="Move grayscale up")
    up.focus()
    page.keyboard.press("Enter")
    expect(up).to_be_focused()  # the step moved, the keyboard stays on it
    page.keyboard.press("Enter")
    expect(up).to_be_disabled()  # now first: its "down" takes the focus
    expect(page.get_by_role("button", name="Move grayscale down")).to_be_focused()
    expect(page.locator("#chain-status")).to_have_text("grayscale is now step 1 of 3")
    page.get_by_role("button", name="Move gaussian_blur down").click()
    order = page.locator("#chain li").evaluate_all("items => items.map(item => item.dataset.op)")
    assert order == ["grayscale", "median", "gaussian_blur"]

    page.set_input_files("#id_image", str(DATA / "coffee.png"))
    page.click("#start")
    assert submitted_job(page).operations == [
        {"op": "grayscale"},
        {"op": "median", "size": 3},
        {"op": "gaussian_blur", "radius": 4.0},
    ]


def test_run_again_fills_the_form_with_a_jobs_chain_and_settings(api, system, chromium):
    chain = [{"op": "median", "size": 5}, {"op": "rotate", "angle": 180}]
    with open(DATA / "coffee.png", "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/",
            files={"image": ("coffee.png", handle)},
            data={"operations": json.dumps(chain), "tile_size": 128, "output_format": "jpeg", "quality": 70},
        )
    assert response.status_code == 201, response.text
    page = logged_in(chromium, system, "alice", "alice-pass")
    page.goto(f"{system.url}/jobs/new/?from={response.json()['id']}")
    expect(page.locator("#rerun")).to_contain_text("coffee.png")
    expect(page.locator("#chain li")).to_have_count(2)
    expect(page.locator('#chain li[data-op="median"] input[name="size"]')).to_have_value("5")
    expect(page.locator('#chain li[data-op="rotate"] select[name="angle"]')).to_have_value("180")
    expect(page.locator("#id_tile_size")).to_have_value("128")
    expect(page.locator("#id_output_format")).to_have_value("jpeg")
    expect(page.locator("#id_quality")).to_have_value("70")

    page.set_input_files("#id_image", str(DATA / "rocket.jpg"))
    page.click("#start")
    job = submitted_job(page)
    assert (job.original_name, job.operations) == ("rocket.jpg", chain)
    assert (job.tile_size, job.output_format, job.output_quality) == (128, "jpeg", 70)


def test_the_page_has_no_serious_accessibility_findings(api, system, chromium):
    page, _ = submit_page(chromium, system)
    assert serious_violations(page) == []
    page.set_input_files("#id_image", str(DATA / "rocket.jpg"))
    add_step(page, "unsharp_mask")
    add_step(page, "rotate")
    expect(page.locator("#grid")).to_be_visible()
    assert serious_violations(page) == []


def test_the_form_fits_a_phone(api, system, chromium):
    page, _ = submit_page(chromium, system, viewport=PHONE)
    page.set_input_files("#id_image", str(DATA / "rocket.jpg"))
    add_step(page, "unsharp_mask")
    expect(page.locator("#grid")).to_be_visible()
    width = page.locator("#submit-form").evaluate("form => [form.scrollWidth, form.clientWidth]")
    assert width[0] <= width[1] <= PHONE["width"]


def test_the_page_tells_the_result_s_size_and_a_refused_chain_s_reason_before_sending(api, system, chromium):
    page, posts = submit_page(chromium, system)
    page.set_input_files("#id_image", str(DATA / "coffee.png"))  # 600 × 400
    add_step(page, "resize")
    step = page.locator('#chain li[data-op="resize"]')
    step.locator('input[name="width"]').fill("300")
    step.locator('select[name="filter"]').select_option("lanczos")
    # blur: 2 tiles of 512; the resize's stage over its 300 × 200 output in tiles of 512 / 2: 2 more
    expect(page.locator("#plan-info")).to_have_text("Result: 300 × 200 px (RGB), 2 stages, 4 tiles in all.")
    add_step(page, "crop")
    crop = page.locator('#chain li[data-op="crop"]')
    for name, value in [("left", "400"), ("top", "0"), ("width", "10"), ("height", "10")]:
        crop.locator(f'input[name="{name}"]').fill(value)
    expect(page.locator("#plan-info")).to_have_text(
        "This chain would be refused: crop: the box (400, 0, 410, 10) lies outside the 300×200 image"
    )
    crop.locator('input[name="left"]').fill("290")
    expect(page.locator("#plan-info")).to_have_text("Result: 10 × 10 px (RGB), 3 stages, 5 tiles in all.")
    assert not posts
    page.click("#start")
    job = submitted_job(page)
    assert job.operations[1] == {
        "op": "resize",
        "width": 300,
        "height": 0,
        "scale": 0,
        "filter": "lanczos",
        "aspect": "keep",
    }
