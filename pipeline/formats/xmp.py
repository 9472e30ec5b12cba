"""XMP packets (ISO 16684-1): parsed with bounds, and the values of chosen properties.

Where a packet lives is each container's business (JPEG APP1 and ExtendedXMP, PNG iTXt
``XML:com.adobe.xmp``, the WebP ``XMP `` chunk, TIFF tag 700, a HEIF item); this module
only reads the packet. It is untrusted XML: a packet over `MAX_XML_BYTES` or with a DTD
is refused before it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator
from xml.etree import ElementTree

# XMP packets beyond this are not parsed.
MAX_XML_BYTES = 2 * 1024 * 1024
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


class Refused(ValueError):
    """An XMP packet that was not read; the message says why, never what it holds."""


def parse(packet: bytes) -> ElementTree.Element:
    """The packet's x:xmpmeta (or rdf:RDF) element; `Refused` if it is too large, declares
    a DTD or is not well-formed XML."""
    if len(packet) > MAX_XML_BYTES:
        raise Refused(f"XMP packet over {MAX_XML_BYTES:,} bytes was not read")
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        # XMP never needs a DTD; entities are how XML bombs and external fetches work.
        raise Refused("XMP packet declares a DTD and was not read")
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end_tag = packet.rfind(b">")
    if start < 0 or end_tag < start:
        raise Refused("XMP packet has no rdf:RDF or x:xmpmeta element")
    xml = packet[start : end_tag + 1]
    # Drop a trailing <?xpacket end?> processing instruction if it was included.
    xml = re.sub(rb"<\?xpacket[^>]*\?>\s*\Z", b"", xml)
    try:
        return ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        raise Refused("XMP packet is not well-formed XML") from None


def split_name(tag: str) -> tuple[str, str]:
    """``(namespace URI, local name)`` of an ElementTree tag or attribute name."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def property_values(
    root: ElementTree.Element, wanted: Container[tuple[str, str]]
) -> Iterator[tuple[tuple[str, str], str]]:
    """``((namespace, name), text)`` for every value of a ``wanted`` property, in
    document order: shorthand attributes (of rdf:Description and of region structs),
    each rdf:li of an array (Bag, Seq, Alt), or the element's own text."""
    for element in root.iter():
        for attr, value in element.attrib.items():
            key = split_name(attr)
            if key in wanted:
                yield key, value
        key = split_name(element.tag)
        if key not in wanted:
            continue
        items = list(element.iter(f"{{{RDF}}}li"))
        if items:
            for li in items:
                yield key, "".join(li.itertext())
        else:
            yield key, "".join(element.itertext())
