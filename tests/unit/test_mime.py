"""The hand-written MIME serializer, proven by the email package parsing its output back."""

import email
import email.policy
from email.header import decode_header, make_header
from email.utils import parseaddr
from html import unescape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.message import OutgoingEmail
from processors.rendering import Attachment
from processors.validation import _FORBIDDEN_IN_HEADERS

header_text = st.text(st.characters(blacklist_categories=("Cs",),
                                    blacklist_characters="".join(_FORBIDDEN_IN_HEADERS)),
                      max_size=200)
body_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)


def _parse(mail: OutgoingEmail):
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert all(not part.defects for part in parsed.walk()), [p.defects for p in parsed.walk()]
    return parsed


def _mail(**changes) -> OutgoingEmail:
    base = {"sender": ("no-reply@shop.example", "Shop"),
            "recipient": ("lena@example.org", "Lena Schmidt"), "subject": "Hello",
            "date": "Fri, 27 Nov 2026 12:00:00 +0000", "text": "Hi\n", "html": "<p>Hi</p>",
            "headers": {"Message-ID": "<k@shop.example>",
                        "X-Flowmail-Idempotency-Key": "0" * 40}}
    return OutgoingEmail(**{**base, **changes})


@settings(max_examples=300, deadline=None)
@given(name=header_text, subject=header_text)
def test_any_name_and_subject_read_back_exactly(name, subject):
    mail = _mail(recipient=("lena@example.org", name), subject=subject)
    parsed = _parse(mail)
    # white space around an unstructured value is not significant (RFC 5322 unfolding)
    assert str(parsed["Subject"]).strip() == subject.strip()
    [address] = parsed["To"].addresses
    assert address.addr_spec == "lena@example.org"
    # RFC 2047: white space between encoded words is not part of the text. The email
    # package's address parser keeps it (its own EmailMessage output does the same), so
    # long non-ASCII names are checked with the RFC decoder instead.
    raw_to = email.message_from_bytes(mail.raw)["To"]
    decoded = str(make_header(decode_header(raw_to)))
    if name.isascii() and name.isprintable():
        assert parseaddr(decoded)[0].strip() == name.strip()
    else:
        assert decoded == f"{name} <lena@example.org>"
    assert all(len(line) <= 998 for line in parsed.as_string().splitlines())


@settings(max_examples=200, deadline=None)
@given(text=body_text, html=body_text)
def test_any_body_reads_back(text, html):
    parsed = _parse(_mail(text=text, html=html))

    def normal(value):
        return value.replace("\r\n", "\n").replace("\r", "\n")

    assert normal(parsed.get_body(("plain",)).get_content()) == normal(text)
    # the HTML part may carry what is not ASCII as character references: the same HTML
    assert unescape(normal(parsed.get_body(("html",)).get_content())) == unescape(normal(html))


def test_attachments_and_odd_filenames():
    files = (Attachment("invoice-1.pdf", b"%PDF-1.4 \x00\xff" * 100),
             Attachment('Rechnung "März".pdf', b"x"), Attachment("請求書.pdf", b"y"))
    parsed = _parse(_mail(attachments=files))
    assert [(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()] == \
        [(f.filename, f.content) for f in files]
    assert parsed.get_content_type() == "multipart/mixed"


def test_cjk_bodies_use_base64_and_ascii_bodies_7bit():
    raw = _mail(text="ご注文ありがとうございます。" * 20, html="<p>plain ascii</p>").raw
    plain, html = raw.split(b"Content-Type: text/")[1:3]
    assert b"Content-Transfer-Encoding: base64" in plain
    assert b"Content-Transfer-Encoding: 7bit" in html and b"<p>plain ascii</p>" in html


@pytest.mark.parametrize("html", [
    "<p>" + "x" * 1200 + "</p>",  # a line over 998 bytes
    "<p>a\0b</p>",  # NUL
    "<p>--=_alt_0000000000000000000000000000000000000000--</p>",  # looks like a boundary
    "<style>p:after{content:'caf\u00e9'}</style><p>caf\u00e9</p>",  # a reference not read
    "<P>caf\u00e9</P><SCRIPT>x='\u00e9'</SCRIPT>",
])
def test_what_7bit_may_not_carry_is_quoted_printable(html):
    email = _mail(html=html)
    part = email.raw.split(b"Content-Type: text/html")[1]
    assert b"Content-Transfer-Encoding: quoted-printable" in part
    parsed = _parse(email)
    assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == html


@pytest.mark.parametrize("html", [
    "<p>Gr\u00fc\u00dfe, caf\u00e9 \u2013 <a href=\"https://shop.example/stra\u00dfe?a=1&amp;b=2\">"
    "\u00e4</a> \U0001f642</p>",
    "<p>&amp;\u00fc &copy\u00fc &#38;#252;</p>",
])
def test_html_that_is_mostly_ascii_goes_7bit_with_character_references(html):
    email = _mail(html=html)
    part = email.raw.split(b"Content-Type: text/html")[1]
    assert b"Content-Transfer-Encoding: 7bit" in part and b"&#252;" in part
    assert unescape(_parse(email).get_body(("html",)).get_content()) == unescape(html)


def test_mostly_cjk_html_stays_base64():
    html = "<p>" + "ご注文ありがとうございます。" * 20 + "</p>"
    part = _mail(html=html).raw.split(b"Content-Type: text/html")[1]
    assert b"Content-Transfer-Encoding: base64" in part


def test_headers_are_crlf_and_ordered():
    raw = _mail(headers={"Message-ID": "<k@shop.example>",
                         "X-Flowmail-Idempotency-Key": "0" * 40,
                         "List-Unsubscribe": "<https://shop.example/u?token=" + "t" * 120 + ">"}
                ).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if not line[:1].isspace()]
    assert names[:5] == [b"From", b"To", b"Subject", b"Date", b"Message-ID"]
    parsed = _parse(_mail())
    assert parsed["MIME-Version"] == "1.0"


@settings(max_examples=300, deadline=None)
@given(subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                       max_size=300).filter(lambda s: not s.isascii()))
def test_non_ascii_headers_are_encoded_words_of_at_most_76_characters(subject):
    """RFC 2047: each encoded word within 75 characters, each line within 76."""
    raw = _mail(subject=subject).raw.decode("ascii")
    head = raw.split("\r\n\r\n", 1)[0]
    subject_lines = head.split("Subject: ", 1)[1].split("\r\n")
    lines = [subject_lines[0]] + [line for line in subject_lines[1:] if line.startswith(" ")]
    assert len("Subject: " + lines[0]) <= 76
    assert all(len(line) <= 76 for line in lines[1:])
    decoded = str(make_header(decode_header(" ".join(line.strip() for line in lines))))
    assert decoded == subject


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.sampled_from("ab <>=/:.?-_ \"'()"), min_size=60, max_size=600)
       .filter(lambda value: "?b?" not in value))  # maybe an encoded word: the test below
def test_long_ascii_headers_fold_at_spaces_and_unfold_exactly(value):
    from processors.mime import MAX_LINE, text_header
    field = text_header("Subject", value)
    lines = field.split("\r\n")
    assert "".join(lines) == f"Subject: {value}"  # unfolding (removing CRLF) gives it back
    assert all(line.strip() and len(line) <= MAX_LINE for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])
    assert lines[0].strip() != "Subject:" or value[:1] == " "
    # a line passes 78 characters only when it had nowhere to fold
    bodies = [lines[0][len("Subject: "):], *(line[1:] for line in lines[1:])]
    for line, body in zip(lines[:-1], bodies[:-1], strict=True):
        assert len(line.rstrip(" ")) <= 78 or " " not in body.strip(" ")
    parsed = email.message_from_bytes(f"{field}\r\n\r\nbody".encode(),
                                      policy=email.policy.default)
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(value.split())


@pytest.mark.parametrize("value", [
    ":" * 53 + "=??b??=", "Sale =?utf-8?b?SGk=?= today", "=?Q?x?= " * 12, "a=?b", "=?" * 60,
])
def test_ascii_that_looks_like_an_encoded_word_reads_back_as_itself(value):
    from processors.mime import text_header
    field = text_header("Subject", value)
    parsed = email.message_from_bytes(f"{field}\r\n\r\nbody".encode(),
                                      policy=email.policy.default)
    assert str(parsed["Subject"]) == value
