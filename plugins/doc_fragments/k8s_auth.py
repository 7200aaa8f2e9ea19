# Copyright: zerotouch.selfheal maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the remediation modules reach the Kubernetes API (mirrors ``_argspec.k8s_auth_spec``)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - If not set, the value of the E(K8S_AUTH_KUBECONFIG) environment variable is used, then the
        kubeconfig the official client finds by itself (E(KUBECONFIG), C(~/.kube/config)), then the
        in-cluster service account.
    type: path
  context:
    description:
      - The kubeconfig context to use; the current context when not set.
      - If not set, the value of the E(K8S_AUTH_CONTEXT) environment variable is used.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://10.0.0.1:6443). Overrides the kubeconfig's.
      - If not set, the value of the E(K8S_AUTH_HOST) environment variable is used.
    type: str
  api_key:
    description:
      - Bearer token for the API server. Overrides the kubeconfig's credentials.
      - If not set, the value of the E(K8S_AUTH_API_KEY) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. When not set, the kubeconfig decides.
    type: bool
    aliases: [verify_ssl]
requirements:
  - kubernetes >= 37.0 (the official Kubernetes Python client)
"""
