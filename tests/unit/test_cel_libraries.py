"""Kubernetes' CEL libraries (``machinery/cellibs.py``) through ``machinery.cel``: each row is an
expression and what kube-apiserver's CEL gives for it (a value, or an error containing a text)."""

from __future__ import annotations

import pytest

from controlplane.machinery import cel
from controlplane.machinery.userinfo import UserInfo


class Error(str):
    """An expected evaluation error whose message contains this text."""


CASES = [
    # lists
    ("[1, 2, 3].isSorted()", True), ("['b', 'a'].isSorted()", False), ("[].isSorted()", True),
    ("[1, 2, 3].sum()", 6), ("[1.5, 2.0].sum()", 3.5), ("[].sum()", 0), ("[3, 1, 2].max()", 3),
    ("[3, 1, 2].min()", 1), ("[].max()", Error("max called on empty list")), ("[1, 'a'].max()", Error("no such overload")),
    ("[1, 2, 3, 2].indexOf(2)", 1), ("[1, 2, 3, 2].lastIndexOf(2)", 3), ("[1].indexOf(5)", -1),
    # regex
    ("'abc 123 def 456'.find('[0-9]+')", "123"), ("'abc'.find('[0-9]+')", ""),
    ("'abc 123 def 456'.findAll('[0-9]+')", ["123", "456"]), ("'a1b2c3'.findAll('[0-9]', 2)", ["1", "2"]),
    ("'x'.find('[')", Error("invalid regular expression")),
    # strings
    ("'hello'.charAt(1)", "e"), ("'hello'.charAt(5)", ""), ("'hello'.charAt(6)", Error("index out of range: 6")),
    ("'hello'.indexOf('l')", 2), ("'hello'.indexOf('l', 3)", 3), ("'hello'.indexOf('')", 0),
    ("'hello'.lastIndexOf('l')", 3), ("'hello'.lastIndexOf('l', 2)", 2), ("'hello'.indexOf('l', 9)", Error("index out of range")),
    ("'HeLLo Ü'.lowerAscii()", "hello Ü"), ("'hello ü'.upperAscii()", "HELLO ü"),
    ("'aaa'.replace('a', 'b')", "bbb"), ("'aaa'.replace('a', 'b', 2)", "bba"), ("'aaa'.replace('a', 'b', 0)", "aaa"),
    ("'a,b,c'.split(',')", ["a", "b", "c"]), ("'a,b,c'.split(',', 2)", ["a", "b,c"]), ("'a,b'.split(',', 0)", []),
    ("'abc'.split('')", ["a", "b", "c"]),
    ("'hello'.substring(1)", "ello"), ("'hello'.substring(1, 3)", "el"),
    ("'hello'.substring(3, 1)", Error("invalid substring range")), ("' \\t x \\n'.trim()", "x"),
    ("['a', 'b'].join('-')", "a-b"), ("['a', 'b'].join()", "ab"), ("'abc'.reverse()", "cba"),
    ("'%s is %d, %.2f and %x%%'.format(['bob', 42, 3.14159, 255])", "bob is 42, 3.14 and ff%"),
    ("'%d'.format(['x'])", Error("decimal clause can only be used on integers")), ("'%s %s'.format([1])", Error("out of range")),
    ("'%s'.format([[1, 'a']])", '[1, "a"]'),
    ("strings.quote('a\"b\\n')", '"a\\"b\\n"'),
    ("'abc'.contains('b')", True),
    # sets
    ("sets.contains([1, 2, 3], [1, 2])", True), ("sets.contains([1], [2])", False), ("sets.contains([1], [])", True),
    ("sets.equivalent([1, 2], [2, 1, 1])", True), ("sets.equivalent([1], [1, 2])", False),
    ("sets.intersects([1], [2, 1])", True), ("sets.intersects([1], [2])", False),
    # quantity
    ("quantity('1Gi').isLessThan(quantity('2Gi'))", True), ("quantity('2Gi').isGreaterThan(quantity('1Gi'))", True),
    ("quantity('500m').add(quantity('500m')) == quantity('1')", True), ("quantity('1') == quantity('1000m')", True),
    ("quantity('1.5').isInteger()", False), ("quantity('2k').asInteger()", 2000), ("quantity('1.5').asInteger()", Error("cannot convert")),
    ("quantity('1Gi').compareTo(quantity('1024Mi'))", 0), ("quantity('1').compareTo(quantity('2'))", -1),
    ("isQuantity('1x')", False), ("isQuantity('250Mi')", True), ("quantity('1x')", Error("quantity")),
    ("quantity('-3').sign()", -1), ("quantity('0').sign()", 0), ("quantity('100m').asApproximateFloat()", 0.1),
    ("quantity('1Gi').sub(1).asInteger()", 1073741823), ("string(quantity('1Gi').add(quantity('512Mi')))", "1536Mi"),
    ("quantity('1').add(2).asInteger()", 3),
    # URLs
    ("url('https://user@example.com:8443/a%20b?x=1').getHost()", "example.com:8443"),
    ("url('https://example.com:8443/p').getHostname()", "example.com"), ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"), ("url('https://example.com:8443/p').getPort()", "8443"),
    ("url('https://example.com/p').getPort()", ""), ("url('https://example.com').getScheme()", "https"),
    ("url('https://example.com/a/b?x=1&x=2&y').getQuery()", {"x": ["1", "2"], "y": [""]}),
    ("url('/abs/path').getEscapedPath()", "/abs/path"), ("isURL('../relative')", False), ("isURL('https://x.y/')", True),
    ("isURL('/absolute')", True), ("url('not a url')", Error("invalid URI for request")),
    # IP / CIDR
    ("ip('10.0.0.1').family()", 4), ("ip('::1').family()", 6), ("isIP('::1')", True), ("isIP('1.2.3')", False),
    ("ip.isCanonical('2001:db8::1')", True), ("ip.isCanonical('2001:db8::0')", False),
    ("ip('127.0.0.1').isLoopback()", True), ("ip('0.0.0.0').isUnspecified()", True),
    ("ip('10.0.0.1').isGlobalUnicast()", True), ("ip('255.255.255.255').isGlobalUnicast()", False),
    ("ip('fe80::1').isLinkLocalUnicast()", True), ("ip('224.0.0.5').isLinkLocalMulticast()", True),
    ("ip('ff02::1').isLinkLocalMulticast()", True), ("string(ip('10.0.0.1'))", "10.0.0.1"),
    ("ip('10.0.0.1') == ip('10.0.0.1')", True), ("ip('::ffff:1.2.3.4')", Error("IPv4-mapped IPv6 address is not allowed")),
    ("ip('fe80::1%eth0')", Error("zone value is not allowed")),
    ("cidr('10.0.0.0/8').containsIP('10.1.2.3')", True), ("cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))", False),
    ("cidr('10.0.0.0/8').containsIP('::1')", False),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')", True), ("cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))", False),
    ("cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')", True), ("string(cidr('10.1.2.3/8').ip())", "10.1.2.3"),
    ("string(cidr('10.1.2.3/8'))", "10.1.2.3/8"),
    ("cidr('10.0.0.0/8').prefixLength()", 8), ("isCIDR('10.0.0.0')", False), ("isCIDR('10.0.0.0/33')", False),
    # errors are values: an error on the short-circuited side does not matter
    ("true || quantity('bad').sign() == 0", True), ("nosuch(1)", Error("undeclared reference to 'nosuch'")),
]


@pytest.mark.parametrize("expr,want", CASES, ids=[c[0] for c in CASES])
def test_library(expr: str, want: object) -> None:
    if isinstance(want, Error):
        with pytest.raises(cel.CELError) as e:
            cel.evaluate(expr, {})
        assert str(want) in str(e.value)
        assert "in activation" not in str(e.value)  # celpy's dump of every variable is cut
    else:
        got = cel.evaluate(expr, {})
        assert got == want and type(got) is type(want), (got, want)


def test_library_values_pass_through_variables() -> None:
    """A ValidatingAdmissionPolicy variable may hold a quantity: it goes back into CEL as one."""
    q = cel.evaluate("quantity('2Gi')", {})
    assert cel.evaluate("variables.q.isGreaterThan(quantity('1Gi'))", {"variables": cel.to_cel({"q": q})}) is True


ALLOWED = {("get", "", "secrets", "", "ns1", ""), ("get", "", "", "", "", "/healthz"),
           ("create", "apps", "deployments", "scale", "ns1", "")}


def _decide(user: UserInfo, attrs: dict[str, str]) -> tuple[str, str, str]:
    if user.name == "boom":
        raise RuntimeError("authorizer down")
    key = (attrs["verb"], attrs.get("group", ""), attrs.get("resource", ""), attrs.get("subresource", ""),
           attrs.get("namespace", ""), attrs.get("path", ""))
    if user.name.startswith("system:serviceaccount:ns1:") and "system:serviceaccounts:ns1" in user.groups:
        return ("allow", "service account", "") if key[0] == "list" else ("deny", "", "")
    return ("allow", "listed", "") if key in ALLOWED else ("deny", "not listed", "")


AUTHZ_CASES = [
    ("authorizer.group('').resource('secrets').namespace('ns1').check('get').allowed()", True),
    ("authorizer.group('').resource('secrets').namespace('ns2').check('get').allowed()", False),
    ("authorizer.group('').resource('secrets').namespace('ns2').check('get').reason()", "not listed"),
    ("authorizer.path('/healthz').check('get').allowed()", True),
    ("authorizer.path('/metrics').check('get').allowed()", False),
    ("authorizer.group('apps').resource('deployments').subresource('scale').namespace('ns1').name('web')"
     ".check('create').allowed()", True),
    ("authorizer.requestResource.check('create').allowed()", True),
    ("authorizer.requestResource.check('delete').allowed()", False),
    ("authorizer.serviceAccount('ns1', 'builder').group('').resource('pods').check('list').allowed()", True),
    ("authorizer.serviceAccount('ns1', 'builder').group('').resource('pods').check('get').allowed()", False),
    ("authorizer.path('/x').check('get').errored()", False),
]


@pytest.mark.parametrize("expr,want", AUTHZ_CASES, ids=[c[0][:70] for c in AUTHZ_CASES])
def test_authorizer(expr: str, want: object) -> None:
    user = UserInfo.make("jane", ["system:authenticated"])
    authz = cel.authorizer(_decide, user, {"group": "apps", "version": "v1", "resource": "deployments",
                                           "subresource": "scale", "namespace": "ns1", "name": "web"})
    assert cel.evaluate(expr, {"authorizer": authz}) == want


def test_authorizer_failure_is_an_errored_decision() -> None:
    authz = cel.authorizer(_decide, UserInfo.make("boom", []), None)
    act = {"authorizer": authz}
    assert cel.evaluate("authorizer.path('/x').check('get').errored()", act) is True
    assert cel.evaluate("authorizer.path('/x').check('get').error()", act) == "authorizer down"
    assert cel.evaluate("authorizer.path('/x').check('get').allowed()", act) is False
