"""The asset library: uploads checked by content, shared along the tree, resolved by the server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from PIL import Image

from enseigne.brand import asset_services, selectors, services
from enseigne.brand.images import process
from enseigne.brand.models import Asset

GPS_TAG = 0x8825


def image_bytes(fmt="PNG", size=(1200, 800), mode="RGB", exif=False, frames=1) -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, (200, 30, 60) if mode == "RGB" else (200, 30, 60, 128))
    kwargs = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        data[0x0112] = 6  # orientation: rotate 90°
        data[GPS_TAG] = {1: "N", 2: (45.0, 45.0, 0.0)}
        kwargs["exif"] = data.tobytes()
    if frames > 1:
        more = [Image.new("RGB", size, (i * 40, 0, 0)) for i in range(1, frames)]
        image.save(out, fmt, save_all=True, append_images=more, duration=100, loop=0)
    else:
        image.save(out, fmt, **kwargs)
    return out.getvalue()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def upload(world, actor=None, node=None, own=False, data=None, kind="image", **kw):
    return asset_services.asset_upload(
        actor=actor or world.hq_marketer,
        node=node or world.root,
        own=own,
        kind=kind,
        name=kw.pop("name", "Visuel"),
        file_name=kw.pop("file_name", "visuel.png"),
        data=data if data is not None else image_bytes(),
        **kw,
    )


def test_upload_is_reencoded_without_exif_and_gets_renditions(world):
    asset = upload(
        world, data=image_bytes("JPEG", size=(1600, 900), exif=True), file_name="photo.jpg"
    )
    with Image.open(asset.file.path) as stored:
        assert stored.format == "JPEG"
        assert not stored.getexif(), "EXIF survived the re-encoding"
        assert stored.size == (900, 1600), "the EXIF orientation was not applied"
    with Image.open(asset.thumbnail.path) as thumb:
        assert max(thumb.size) == 320
    with Image.open(asset.email_rendition.path) as email:
        assert email.width == 600 and email.format == "JPEG"
    assert (asset.width, asset.height) == (900, 1600)
    assert asset.size_bytes == asset.email_rendition.size
    assert b"SecretCam" not in Path(asset.file.path).read_bytes()


def test_transparent_and_webp_images_get_mail_friendly_renditions(world):
    asset = upload(world, data=image_bytes("WEBP", mode="RGBA"), file_name="logo.webp")
    assert asset.file.name.endswith(".webp")
    assert asset.email_rendition.name.endswith(".png"), "WebP is not shown by every mail client"
    small = upload(world, data=image_bytes("PNG", size=(300, 100)), file_name="small.png")
    with Image.open(small.email_rendition.path) as email:
        assert email.size == (300, 100), "small images must not be enlarged"


def test_animated_gif_keeps_its_frames(world):
    asset = upload(world, data=image_bytes("GIF", size=(200, 100), frames=3), file_name="anim.gif")
    with Image.open(asset.email_rendition.path) as email:
        assert email.format == "GIF" and email.n_frames == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "SVG",
        ),
        (b"<svg><script>alert(1)</script></svg>", "SVG"),
        (b"<html><script>alert(1)</script></html>", "is not a PNG, JPEG, GIF or WebP"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "damaged"),
        (b"GIF89a<script>alert(1)</script>", "damaged"),
        (b"", "is empty"),
    ],
)
def test_bad_files_are_refused_by_content_with_a_reason(world, data, message):
    with pytest.raises(ValidationError) as caught:
        upload(world, data=data, file_name="innocent.png")
    assert message in " ".join(caught.value.messages)
    assert "innocent.png" in " ".join(caught.value.messages)
    assert Asset.objects.count() == 0


def test_a_png_named_jpg_is_judged_by_its_content(world):
    asset = upload(world, data=image_bytes("PNG"), file_name="photo.jpg")
    assert asset.file.name.endswith(".png")


def test_size_limit(world, settings):
    settings.ASSET_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ValidationError, match="the limit is"):
        upload(world, data=image_bytes("PNG", size=(500, 500)))


def test_decompression_bomb_is_refused():
    out = io.BytesIO()
    Image.new("1", (10000, 5000)).save(out, "PNG")
    with pytest.raises(ValidationError, match="megapixels"):
        process(out.getvalue(), "bomb.png")


def test_sharing_follows_the_tree(world):
    regional = upload(world, node=world.region_a, name="Sud-Est")
    national = upload(world, node=world.root, name="National")
    own = upload(world, actor=world.manager_a, node=world.unit_a, own=True, name="Lyon only")
    lyon = set(selectors.assets_visible_to_unit(world.unit_a).values_list("name", flat=True))
    lille = set(selectors.assets_visible_to_unit(world.unit_b).values_list("name", flat=True))
    grenoble = set(selectors.assets_visible_to_unit(world.unit_a2).values_list("name", flat=True))
    assert lyon == {"Sud-Est", "National", "Lyon only"}
    assert lille == {"National"}
    assert grenoble == {"Sud-Est", "National"}
    assert set(selectors.assets_for_user(world.manager_b).values_list("name", flat=True)) == {
        "National"
    }
    assert set(selectors.assets_for_user(world.region_manager).values_list("name", flat=True)) == {
        "Sud-Est",
        "National",
        "Lyon only",
    }
    with pytest.raises(Http404):
        selectors.get_asset_for_user(world.manager_b, own.public_id)
    with pytest.raises(Http404):
        selectors.get_asset_for_user(world.manager_b, regional.public_id)
    assert selectors.get_asset_for_user(world.manager_b, national.public_id) == national


def test_who_may_add_assets(world):
    with pytest.raises(PermissionDenied):
        upload(world, actor=world.staff_a, node=world.unit_a, own=True)
    with pytest.raises(PermissionDenied):
        upload(world, actor=world.manager_a, node=world.unit_a, own=False)  # sharing is HQ's
    with pytest.raises(PermissionDenied):
        upload(world, actor=world.manager_a, node=world.unit_b, own=True)
    with pytest.raises(PermissionDenied):
        asset_services.asset_update(actor=world.manager_b, asset=upload(world), name="Renamed")
    assert Asset.objects.count() == 1


def test_offers_and_products_are_validated_field_by_field(world):
    with pytest.raises(ValidationError) as caught:
        asset_services.asset_create(
            actor=world.hq_marketer,
            node=world.root,
            own=False,
            kind="offer",
            name="",
            data={
                "title": "",
                "valid_from": "2026-12-24",
                "valid_until": "2026-12-01",
                "url": "javascript:alert(1)",
            },
        )
    errors = caught.value.message_dict
    assert set(errors) == {"title", "valid_until", "url"}
    assert "ends before it starts" in errors["valid_until"][0]
    assert "https://" in errors["url"][0]
    with pytest.raises(ValidationError) as caught:
        asset_services.asset_create(
            actor=world.hq_marketer,
            node=world.root,
            own=False,
            kind="product",
            name="",
            data={"sku": "X1", "valid_from": "31/12/2026"},
        )
    assert set(caught.value.message_dict) == {"name"}
    offer = asset_services.asset_create(
        actor=world.hq_marketer,
        node=world.root,
        own=False,
        kind="offer",
        name="",
        tags="Noël, promo,noël",
        data={
            "title": "-20 % sur tout",
            "price": "39 €",
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-24",
            "url": "https://maison.example.com/noel",
            "extra": "dropped",
        },
    )
    assert offer.name == "-20 % sur tout" and offer.tags == ["noël", "promo"]
    assert "extra" not in offer.data


EMAIL = """<mjml><mj-body><mj-section><mj-column>
<ens-zone name="hero" kind="image" label="Visuel" />
<ens-zone name="deal" kind="offer" label="Offre" />
<mj-text>{{ brand.legal_footer }}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture
def template(world):
    return services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="email",
        name="Promo",
        source=EMAIL,
        subject="Promo",
    )


def offer(world, **data):
    return asset_services.asset_create(
        actor=world.hq_marketer,
        node=world.root,
        own=False,
        kind="offer",
        name="",
        data={"title": "Offre", "url": "https://maison.example.com/o", **data},
    )


def test_a_pick_is_resolved_from_the_library_never_from_the_form(world, template):
    image, deal = upload(world), offer(world, price="10 €")
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={
            "hero": {"asset": str(image.public_id), "src": "javascript:alert(1)", "alt": "Vitrine"},
            "deal": {
                "asset": str(deal.public_id),
                "url": "https://evil.example.net/",
                "title": "Forged",
            },
        },
    )
    hero, picked = local.values["hero"], local.values["deal"]
    # The library's own path (made absolute when a message is rendered, see test_demo_port).
    assert hero["src"] == image.email_rendition.url and hero["src"].startswith("/media/")
    assert hero["alt"] == "Vitrine"
    assert picked["url"] == "https://maison.example.com/o" and picked["title"] == "Offre"
    assert picked["price"] == "10 €"
    assert set(local.assets.all()) == {image, deal}
    assert selectors.usage_counts([image.pk, deal.pk]) == {image.pk: 1, deal.pk: 1}


def test_picks_out_of_scope_wrong_kind_or_expired_are_flagged(world, template):
    lille_only = upload(world, actor=world.manager_b, node=world.unit_b, own=True)
    expired = offer(world, valid_from="2020-01-01", valid_until="2020-01-31")
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={
            "hero": {"asset": str(lille_only.public_id)},
            "deal": {"asset": str(expired.public_id)},
        },
    )
    assert local.status == "flagged"
    assert "Zone “Visuel” uses a library item this unit cannot see." in local.problems
    assert "Zone “Offre”: the offer “Offre” ended on 2020-01-31." in local.problems
    assert "src" not in local.values["hero"]
    wrong = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        local=local,
        values={"hero": {"asset": str(offer(world).public_id)}, "deal": {}},
    )
    assert "Zone “Visuel” takes an image or logo, not “Offre”." in wrong.problems


def test_library_changes_reach_local_versions_and_delete_is_refused_while_used(
    world, template, django_capture_on_commit_callbacks
):
    deal = offer(world, price="10 €")
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"deal": {"asset": str(deal.public_id)}},
    )
    asset_services.asset_update(
        actor=world.hq_marketer, asset=deal, data={**deal.data, "price": "12 €"}
    )
    local.refresh_from_db()
    assert local.values["deal"]["price"] == "12 €"
    with pytest.raises(ValidationError, match="used in 1 template"):
        asset_services.asset_delete(actor=world.hq_marketer, asset=deal)
    unused = upload(world)
    path = unused.file.path
    with django_capture_on_commit_callbacks(execute=True):
        asset_services.asset_delete(actor=world.hq_marketer, asset=unused)
        # The file goes only once the row's deletion is committed.
        assert Path(path).exists()
    assert not Asset.objects.filter(pk=unused.pk).exists()
    assert not Path(path).exists()


def test_brand_logo_comes_from_the_library(world, template):
    from enseigne.brand.previews import brand_context

    assert brand_context(world.unit_a)["logo_url"] == ""
    logo = upload(world, kind="logo", variant="colour", name="Logo")
    upload(world, kind="logo", variant="white", name="Logo blanc")
    context = brand_context(world.unit_a)
    assert context["logo_url"].endswith(logo.email_rendition.name.rsplit("/")[-1])
    assert context["logo_white_url"] and context["logo_white_url"] != context["logo_url"]


def test_search_by_words_folder_and_tag(world):
    upload(world, name="Vitrine Noël", folder="Saisons", tags=["noel"])
    upload(world, name="Façade", folder="Magasins", tags=["facade", "ete"])
    everything = selectors.assets_for_user(world.hq_marketer)
    names = lambda qs: sorted(qs.values_list("name", flat=True))  # noqa: E731
    assert names(selectors.asset_search(everything, q="noël")) == ["Vitrine Noël"]
    assert names(selectors.asset_search(everything, q="saisons")) == ["Vitrine Noël"]
    assert names(selectors.asset_search(everything, tag="ete")) == ["Façade"]
    assert names(selectors.asset_search(everything, folder="Magasins")) == ["Façade"]
    assert selectors.asset_folders(everything) == ["Magasins", "Saisons"]


def test_empty_parts_of_a_picked_offer_leave_no_broken_image_or_button(world, template):
    from enseigne.brand.previews import email_preview

    deal = offer(world)  # no picture
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"deal": {"asset": str(deal.public_id)}},
    )
    html, _text = email_preview(local.version, local.values, world.unit_a)
    assert "<img" not in html, "an empty picture or hero left an <img> behind"
    assert 'href="https://maison.example.com/o"' in html
    no_link = offer(world, url="")
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        local=local,
        values={"deal": {"asset": str(no_link.public_id)}},
    )
    html, _text = email_preview(local.version, local.values, world.unit_a)
    assert "maison.example.com" not in html and "See the offer" not in html


def test_files_and_logos_hq_writes_into_a_template_count_as_used(world):
    picture, logo = upload(world), upload(world, kind="logo", variant="colour", name="Logo")
    unused = upload(world, name="Unused")
    source = EMAIL.replace(
        "<mj-text>{{ brand.legal_footer }}",
        f'<mj-image src="https://cdn.example.com/{picture.email_rendition.name}" />'
        '<mj-image src="{{ brand.logo_url }}" /><mj-text>{{ brand.legal_footer }}',
    )
    services.template_create(
        actor=world.hq_marketer, shared_with=world.root, channel="email", name="HQ", source=source
    )
    assert selectors.usage_counts([picture.pk, logo.pk, unused.pk]) == {picture.pk: 1, logo.pk: 1}
