"""XMP packets: refused before parsing when too big or with a DTD; property values."""

from __future__ import annotations

import pytest

from pipeline.formats import xmp
from tests.support import dirty

DC = "http://purl.org/dc/elements/1.1/"
RDF_OPEN = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)
RDF_CLOSE = "</rdf:RDF></x:xmpmeta>"


def packet(body: str) -> bytes:
    return (RDF_OPEN + body + RDF_CLOSE).encode()


def test_a_packet_with_xpacket_wrappers_is_parsed() -> None:
    root = xmp.parse(dirty.xmp_packet("Amelia Hart"))

    assert list(xmp.property_values(root, {(DC, "description")})) == [
        ((DC, "description"), "Amelia Hart on stage")
    ]


def test_attributes_array_items_and_plain_text_are_values_in_document_order() -> None:
    root = xmp.parse(
        packet(
            f'<rdf:Description xmlns:dc="{DC}" dc:title="Sports day">'
            "<dc:subject><rdf:Bag><rdf:li>running</rdf:li><rdf:li>prizes</rdf:li></rdf:Bag>"
            "</dc:subject><dc:creator>not wanted</dc:creator>"
            "<dc:description>Plain</dc:description></rdf:Description>"
        )
    )

    values = list(xmp.property_values(root, {(DC, "title"), (DC, "subject"), (DC, "description")}))

    assert [v for _, v in values] == ["Sports day", "running", "prizes", "Plain"]


REFUSED = [
    ("a DTD", b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + packet(""), "declares a DTD"),
    ("not XML", packet("<rdf:Description><unclosed></rdf:Description>"), "not well-formed"),
    ("no RDF", b"<html>hello</html>", "no rdf:RDF or x:xmpmeta"),
    ("too big", packet(" " * (xmp.MAX_XML_BYTES + 1)), "over"),
]


@pytest.mark.parametrize(("label", "data", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_packets_say_why_without_quoting_them(label: str, data: bytes, words: str) -> None:
    with pytest.raises(xmp.Refused) as caught:
        xmp.parse(data)

    assert words in str(caught.value) and "aaaa" not in str(caught.value)


def test_split_name() -> None:
    assert xmp.split_name(f"{{{DC}}}title") == (DC, "title")
    assert xmp.split_name("about") == ("", "about")
