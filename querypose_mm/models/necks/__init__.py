from .hrfpn_v1 import HRFPNv1

__all__ = ['HRFPNv1']
