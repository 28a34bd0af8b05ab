"""Maison Lumière's brand kit: logos and product pictures drawn here, templates, offers.

Everything goes through the same services as the UI (uploads are checked and
re-encoded like any other), so the demo shows what a real network would have.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata

from PIL import Image, ImageDraw, ImageFont

from enseigne.brand import asset_services, services
from enseigne.brand.models import Asset
from enseigne.network.models import OrgNode, User

GOLD, INK, CREAM = (201, 148, 52), (38, 38, 52), (250, 244, 232)


def _font(size: int):
    return ImageFont.load_default(size=size)


def _ascii(text: str) -> str:
    """Pillow's built-in font has no accents; the drawings spell names without them."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def logo(variant: str) -> bytes:
    """The wordmark with its lamp: colour, white (for dark backgrounds) or square."""
    if variant == "square":
        image = Image.new("RGBA", (400, 400), INK + (255,))
        draw = ImageDraw.Draw(image)
        draw.ellipse((110, 60, 290, 240), fill=GOLD + (255,))
        draw.text((200, 310), "ML", font=_font(110), fill=CREAM + (255,), anchor="mm")
        return _png(image)
    ink = INK if variant == "colour" else (255, 255, 255)
    image = Image.new("RGBA", (720, 180), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 30, 140, 150), fill=GOLD + (255,))
    draw.rectangle((72, 150, 88, 172), fill=ink + (255,))
    draw.text((170, 90), "MAISON LUMIERE", font=_font(58), fill=ink + (255,), anchor="lm")
    return _png(image)


def picture(label: str, colour: tuple[int, int, int], shape: str, size=(1200, 800)) -> bytes:
    """A flat illustration: a coloured object on a cream background, with its name."""
    image = Image.new("RGB", size, CREAM)
    draw = ImageDraw.Draw(image)
    w, h = size
    if shape == "lamp":
        draw.polygon(
            [(w * 0.38, h * 0.18), (w * 0.62, h * 0.18), (w * 0.7, h * 0.45), (w * 0.3, h * 0.45)],
            fill=colour,
        )
        draw.rectangle((w * 0.485, h * 0.45, w * 0.515, h * 0.78), fill=INK)
        draw.ellipse((w * 0.38, h * 0.76, w * 0.62, h * 0.84), fill=INK)
    elif shape == "cushion":
        draw.rounded_rectangle((w * 0.28, h * 0.22, w * 0.72, h * 0.72), radius=60, fill=colour)
    elif shape == "vase":
        draw.ellipse((w * 0.36, h * 0.32, w * 0.64, h * 0.78), fill=colour)
        draw.rectangle((w * 0.45, h * 0.16, w * 0.55, h * 0.4), fill=colour)
    elif shape == "candle":
        draw.rectangle((w * 0.4, h * 0.34, w * 0.6, h * 0.78), fill=colour)
        draw.ellipse((w * 0.475, h * 0.18, w * 0.525, h * 0.32), fill=GOLD)
    else:  # a festive window
        for i in range(14):
            x, y = (i * 173) % w, (i * 97) % (h - 200) + 60
            draw.ellipse((x, y, x + 60, y + 60), fill=GOLD if i % 2 else colour)
    draw.text((w / 2, h * 0.92), _ascii(label), font=_font(int(h * 0.07)), fill=INK, anchor="mm")
    return _png(image)


WELCOME = """<mjml>
  <mj-head><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes>
    <mj-style>.ens-offer h3 { margin: 0 0 6px; }</mj-style></mj-head>
  <mj-body background-color="#f6f1e7">
    <mj-section background-color="#262634"><mj-column>
      <mj-image src="{{ brand.logo_white_url }}" alt="{{ brand.name }}" width="220px" />
    </mj-column></mj-section>
    <mj-section background-color="#ffffff"><mj-column>
      <mj-text font-size="24px" color="#262634"><ens-zone name="headline" kind="text" max="70" label="Titre" required="true">Bienvenue chez Maison Lumière</ens-zone></mj-text>
      <mj-text font-size="16px">Bonjour {{ contact.first_name | default: "à vous" }},</mj-text>
      <mj-text font-size="15px" line-height="1.5"><ens-zone name="message" kind="rich" max="600" label="Mot du magasin">Merci de votre visite ! Toute l'équipe est ravie de vous compter parmi nos clients.</ens-zone></mj-text>
      <mj-text font-size="15px"><ens-zone name="tone" kind="choice" label="Signature"><ens-option value="equipe" label="L'équipe">À très bientôt, l'équipe de {{ unit.name }}.</ens-option><ens-option value="manager" label="Le responsable">À très bientôt, {{ unit.manager }}, responsable de {{ unit.name }}.</ens-option></ens-zone></mj-text>
    </mj-column></mj-section>
    <mj-section background-color="#ffffff"><mj-column>
      <ens-zone name="offer" kind="offer" label="Offre de bienvenue" />
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-size="12px" color="#555555" line-height="1.5">{{ unit.name }} · {{ unit.address }} · {{ unit.phone }}<br/>{{ unit.hours | newline_to_br }}<br/>{{ brand.legal_footer }}<br/><a href="{{ links.unsubscribe }}">Se désabonner</a> · <a href="{{ links.preferences }}">Mes préférences</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

SEASONAL = """<mjml>
  <mj-head><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>
  <mj-body background-color="#f6f1e7">
    <mj-section background-color="#ffffff"><mj-column>
      <mj-image src="{{ brand.logo_url }}" alt="{{ brand.name }}" width="200px" />
      <ens-zone name="hero" kind="image" label="Visuel" upload="true" />
      <mj-text font-size="26px" color="#262634" align="center"><ens-zone name="headline" kind="text" max="60" label="Titre" required="true">Les fêtes s'illuminent</ens-zone></mj-text>
      <mj-text font-size="15px" line-height="1.5">Bonjour {{ contact.first_name | default: "à vous" }},</mj-text>
      <mj-text font-size="15px" line-height="1.5"><ens-zone name="message" kind="rich" max="500" label="Message du magasin">Venez découvrir notre sélection de fêtes en magasin.</ens-zone></mj-text>
    </mj-column></mj-section>
    <mj-section background-color="#ffffff"><mj-column>
      <ens-zone name="offer" kind="offer" label="Offre" />
    </mj-column><mj-column>
      <ens-zone name="product" kind="product" label="Produit vedette" />
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-size="12px" color="#555555" line-height="1.5">{{ unit.name }} · {{ unit.address }} · {{ unit.hours | newline_to_br }}<br/>{{ brand.legal_footer }}<br/><a href="{{ links.unsubscribe }}">Se désabonner</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

EVENT = """<mjml>
  <mj-head><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>
  <mj-body background-color="#262634">
    <mj-section><mj-column>
      <mj-image src="{{ brand.logo_white_url }}" alt="{{ brand.name }}" width="200px" />
      <mj-text color="#c99434" font-size="14px" align="center" letter-spacing="2px">INVITATION</mj-text>
      <mj-text color="#ffffff" font-size="28px" align="center"><ens-zone name="event_name" kind="text" max="60" label="Nom de l'événement" required="true">Soirée privée</ens-zone></mj-text>
      <mj-text color="#ffffff" font-size="18px" align="center"><ens-zone name="event_when" kind="text" max="60" label="Date et heure" required="true">Jeudi 11 décembre, 18 h 30</ens-zone></mj-text>
    </mj-column></mj-section>
    <mj-section background-color="#ffffff"><mj-column>
      <mj-text font-size="15px" line-height="1.5">{{ contact.first_name | default: "Cher client" }}, <ens-zone name="details" kind="rich" max="500" label="Programme">découvrez en avant-première notre nouvelle collection autour d'un verre.</ens-zone></mj-text>
      <mj-text font-size="15px">{{ unit.name }}, {{ unit.address }}<br/>{{ unit.vars.parking }}</mj-text>
      <mj-button background-color="#c99434" href="{{ unit.website }}">Nous trouver</mj-button>
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-size="12px" color="#bbbbbb">{{ brand.legal_footer }}<br/><a href="{{ links.unsubscribe }}" style="color:#bbbbbb">Se désabonner</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

SMS_FLASH = (
    '{{ unit.name }} : <ens-zone name="message" kind="text" max="110" label="Message" required="true">'
    "Vente flash ce samedi : -20 % sur les luminaires !</ens-zone>"
)
SMS_EVENT = (
    '{{ contact.first_name | default: "Bonjour" }}, rappel : <ens-zone name="event" kind="text" max="90" '
    'label="Événement" required="true">notre soirée privée jeudi à 18 h 30</ens-zone> chez {{ unit.name }}, '
    "{{ unit.address }}."
)


def seed_brand_kit(
    root: OrgNode, units: dict[str, OrgNode], users: dict[str, User], domain: str
) -> dict:
    hq = users[f"marketing@{domain}"]
    today = dt.date.today()

    def upload(
        name, data, kind="image", variant="", folder="", tags=(), node=root, own=False, actor=hq
    ):
        return asset_services.asset_upload(
            actor=actor,
            node=node,
            own=own,
            kind=kind,
            name=name,
            file_name=f"{name}.png",
            data=data,
            folder=folder,
            tags=tags,
            variant=variant,
        )

    for variant, name in (("colour", "Logo"), ("white", "Logo blanc"), ("square", "Logo carré")):
        upload(name, logo(variant), kind="logo", variant=variant, folder="Logos", tags=["logo"])
    christmas = upload(
        "Vitrine de Noël",
        picture("Noël chez Maison Lumière", (166, 40, 48), "window"),
        folder="Saisons",
        tags=["noel", "hiver"],
    )
    upload(
        "Collection printemps",
        picture("Printemps", (120, 170, 120), "vase"),
        folder="Saisons",
        tags=["printemps"],
    )
    products = {}
    for sku, name, category, price, colour, shape in (
        ("LUM-ARC-01", "Lampe Arc laiton", "Luminaires", "129 €", GOLD, "lamp"),
        ("TEX-LIN-04", "Coussin lin lavé", "Textile", "35 €", (122, 140, 160), "cushion"),
        ("DEC-VAS-02", "Vase grès émaillé", "Décoration", "49 €", (90, 120, 110), "vase"),
        ("PAR-BOU-07", "Bougie Ambre & cèdre", "Parfums d'intérieur", "24 €", (215, 190, 150),
         "candle"),
    ):  # fmt: skip
        products[sku] = asset_services.asset_create(
            actor=hq,
            node=root,
            own=False,
            kind=Asset.Kind.PRODUCT,
            name=name,
            folder="Produits",
            tags=["catalogue"],
            data={
                "sku": sku,
                "name": name,
                "category": category,
                "price": price,
                "url": f"https://www.{domain}/produits/{sku.lower()}",
            },
            image=(f"{sku}.png", picture(name, colour, shape)),
        )
    offers = {
        "fetes": asset_services.asset_create(
            actor=hq,
            node=root,
            own=False,
            kind=Asset.Kind.OFFER,
            name="",
            folder="Offres",
            tags=["noel"],
            data={
                "title": "-20 % sur les luminaires",
                "text": "Sur toute la collection lumière, en magasin.",
                "price": "dès 19 €",
                "valid_from": (today - dt.timedelta(days=7)).isoformat(),
                "valid_until": (today + dt.timedelta(days=40)).isoformat(),
                "legal": "Hors articles déjà remisés. Dans la limite des stocks disponibles.",
                "url": f"https://www.{domain}/offres/fetes",
                "cta": "J'en profite",
            },
        ),
        "bienvenue": asset_services.asset_create(
            actor=hq,
            node=root,
            own=False,
            kind=Asset.Kind.OFFER,
            name="",
            folder="Offres",
            tags=["bienvenue"],
            data={
                "title": "10 € offerts sur votre prochain achat",
                "text": "Dès 50 € d'achat, sur présentation de cet e-mail.",
                "valid_from": today.isoformat(),
                "valid_until": (today + dt.timedelta(days=90)).isoformat(),
                "legal": "Valable une fois par client.",
                "url": f"https://www.{domain}/bienvenue",
                "cta": "Voir le magasin",
            },
        ),
    }
    asset_services.asset_create(
        actor=hq,
        node=root,
        own=False,
        kind=Asset.Kind.TEXT,
        name="Livraison offerte",
        folder="Textes",
        data={"text": "Livraison offerte dès 80 € d'achat, retrait gratuit en magasin."},
    )
    lyon = units["lyon"]
    lyon_manager = users[f"lyon@{domain}"]
    lyon_window = upload(
        "Vitrine Lyon Presqu'île",
        picture("Lyon — Presqu'île", (70, 110, 150), "window"),
        node=lyon,
        own=True,
        actor=lyon_manager,
        folder="Magasin",
        tags=["lyon"],
    )
    services.guardrails_update(
        actor=hq,
        node=root,
        restricted_patterns=[
            "gratuit",
            "100 % garanti",
            "moins cher que",
            r"re:\bprix\s+cass[ée]s?\b",
        ],
        allowed_link_domains=[domain, f"www.{domain}"],
        max_image_kb=300,
        require_logo=True,
        require_legal_footer=True,
    )
    make = services.template_create
    templates = {
        "welcome": make(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Bienvenue",
            description="Envoyé aux nouveaux clients du magasin",
            source=WELCOME,
            subject="Bienvenue chez {{ unit.name }}",
        ),
        "seasonal": make(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Promotion de saison",
            description="Les fêtes : visuel, offre et produit vedette",
            source=SEASONAL,
            subject="{{ contact.first_name | default: 'Bonjour' }}, les fêtes s'illuminent chez {{ unit.name }}",
        ),
        "event": make(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Invitation à un événement en magasin",
            description="Soirée privée, atelier, inauguration",
            source=EVENT,
            subject="Vous êtes invité·e chez {{ unit.name }}",
        ),
        "flash": make(
            actor=hq,
            shared_with=root,
            channel="sms",
            name="SMS promo flash",
            source=SMS_FLASH,
            sms_stop="STOP au 36111",
            max_segments=1,
        ),
        "reminder": make(
            actor=hq,
            shared_with=root,
            channel="sms",
            name="SMS rappel d'événement",
            source=SMS_EVENT,
            sms_stop="STOP au 36111",
            max_segments=2,
        ),
    }
    save = services.local_version_save
    save(
        actor=lyon_manager,
        unit=lyon,
        template=templates["welcome"],
        name="Bienvenue Lyon",
        values={
            "headline": "Bienvenue chez Maison Lumière Lyon",
            "message": "<div>Merci de votre visite rue de la République ! Passez nous voir pour nos "
            "<strong>ateliers déco</strong> du samedi.</div>",
            "tone": "manager",
            "offer": {"asset": str(offers["bienvenue"].public_id)},
        },
    )
    save(
        actor=lyon_manager,
        unit=lyon,
        template=templates["seasonal"],
        name="Noël à Lyon",
        values={
            "headline": "Noël s'illumine à Lyon",
            "message": "<div>Notre vitrine de la Presqu'île est prête : venez la découvrir !</div>",
            "hero": {
                "asset": str(lyon_window.public_id),
                "alt": "La vitrine de Noël du magasin de Lyon",
            },
            "offer": {"asset": str(offers["fetes"].public_id)},
            "product": {"asset": str(products["LUM-ARC-01"].public_id)},
        },
    )
    save(
        actor=users[f"lille@{domain}"],
        unit=units["lille"],
        template=templates["seasonal"],
        name="Noël à Lille",
        values={
            "headline": "Les fêtes à Lille",
            "hero": {"asset": str(christmas.public_id)},
            "offer": {"asset": str(offers["fetes"].public_id)},
            "product": {"asset": str(products["PAR-BOU-07"].public_id)},
        },
    )
    save(
        actor=lyon_manager,
        unit=lyon,
        template=templates["flash"],
        name="Flash samedi Lyon",
        values={"message": "Samedi seulement : -20 % sur les luminaires !"},
    )
    # Head office has since reworded the seasonal footer: Lyon's and Lille's versions follow and show the diff.
    services.template_publish(
        actor=hq,
        template=templates["seasonal"],
        source=SEASONAL.replace(
            "{{ unit.name }} · {{ unit.address }} · {{ unit.hours | newline_to_br }}",
            "{{ unit.name }} · {{ unit.address }} · {{ unit.phone }}<br/>{{ unit.hours | newline_to_br }}",
        ),
    )
    return {"assets": Asset.objects.count(), "templates": len(templates)}
