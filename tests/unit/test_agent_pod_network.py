"""The agent's per-pod network files and environment (pure): resolv.conf per dnsPolicy and
dnsConfig, /etc/hosts, and the Service environment variables (kubelet's rules)."""

from __future__ import annotations

import pytest

from controlplane.agent import pod_dns as D
from controlplane.agent.service_env import service_env

HOST = D.parse_resolv_conf("nameserver 10.255.255.53\nsearch corp.example\noptions timeout:2\n")


def pod(ns="shop", **spec):
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


@pytest.mark.parametrize("spec,expected", [
    ({}, "nameserver 10.43.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
         "options ndots:5\n"),
    ({"dnsPolicy": "Default"}, "nameserver 10.255.255.53\nsearch corp.example\noptions timeout:2\n"),
    ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.70.0.9"], "searches": ["a.b"],
                                         "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
     "nameserver 10.70.0.9\nsearch a.b\noptions ndots:2 edns0\n"),
    ({"dnsConfig": {"nameservers": ["10.43.0.10", "10.70.0.9"], "options": [{"name": "ndots", "value": "1"}]}},
     "nameserver 10.43.0.10\nnameserver 10.70.0.9\nsearch shop.svc.cluster.local svc.cluster.local cluster.local "
     "corp.example\noptions ndots:1\n"),
], ids=["cluster-first", "default", "none", "merged-config"])
def test_resolv_conf(spec, expected):
    assert D.resolv_conf(pod(**spec), ["10.43.0.10"], "cluster.local", HOST).render() == expected


def test_cluster_first_without_cluster_dns_falls_back_to_the_host():
    assert D.resolv_conf(pod(), [], "cluster.local", HOST).nameservers == ["10.255.255.53"]


def test_hosts_file():
    p = pod(hostname="web-0", subdomain="web", hostAliases=[{"ip": "10.70.0.5", "hostnames": ["a", "b"]}])
    text = D.hosts_file(p, "10.70.1.7", "web-0", "cluster.local")
    assert "127.0.0.1\tlocalhost" in text
    assert "10.70.1.7\tweb-0.web.shop.svc.cluster.local\tweb-0" in text
    assert text.rstrip().endswith("10.70.0.5\ta\tb")
    assert "10.70.1.8\tplain\n" in D.hosts_file(pod(), "10.70.1.8", "plain", "cluster.local")


SERVICES = [
    {"metadata": {"name": "kubernetes", "namespace": "default"},
     "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
    {"metadata": {"name": "web-api", "namespace": "shop"},
     "spec": {"clusterIP": "10.43.0.5", "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}},
    {"metadata": {"name": "headless", "namespace": "shop"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
    {"metadata": {"name": "other", "namespace": "elsewhere"}, "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 1}]}},
]


def test_service_env_docker_links_style():
    env = service_env(SERVICES, pod())
    assert env["WEB_API_SERVICE_HOST"] == "10.43.0.5" and env["WEB_API_SERVICE_PORT"] == "80"
    assert env["WEB_API_SERVICE_PORT_HTTP"] == "80" and env["WEB_API_SERVICE_PORT_DNS"] == "53"
    assert env["WEB_API_PORT"] == "tcp://10.43.0.5:80"
    assert env["WEB_API_PORT_53_UDP"] == "udp://10.43.0.5:53" and env["WEB_API_PORT_53_UDP_PROTO"] == "udp"
    assert env["WEB_API_PORT_80_TCP_ADDR"] == "10.43.0.5" and env["WEB_API_PORT_80_TCP_PORT"] == "80"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_PORT_443_TCP"] == "tcp://10.43.0.1:443"
    assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in env)


def test_enable_service_links_false_keeps_only_the_master_service():
    env = service_env(SERVICES, pod(enableServiceLinks=False))
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}
