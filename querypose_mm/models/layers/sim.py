import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmpose.registry import MODELS
from ..utils import checked_choice

ITERATION_MODES = ('sim', 'sum', 'concat', 'none')


@MODELS.register_module()
class SelectiveIteration(BaseModule):
    """Selective Iteration Module (SIM, QueryPose §3.3, eq. 3).

    ``g_E, g_Q = sigmoid(MLP(E_P + Q_P))``, ``Q_P' = g_E * E_P + g_Q * Q_P``,
    where the MLP is Linear(d, d/r, no bias) -> LayerNorm -> ReLU ->
    Linear(d/r, 2d). The other modes are the ablations of Table 2a.

    Args:
        part_dim (int): Dimension d_p of the part queries.
        mode (str): ``'sim'`` (gated fusion), ``'sum'`` (``E + Q``),
            ``'concat'`` (``Linear(2d -> d)([E, Q])``) or ``'none'`` (the new
            embedding replaces the query: ``Q' = E``). Defaults to ``'sim'``.
        reduction (int): Hidden ratio r of the gate MLP. Defaults to 4.
    """

    def __init__(self,
                 part_dim: int,
                 mode: str = 'sim',
                 reduction: int = 4,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.mode = checked_choice('SelectiveIteration mode', mode,
                                   ITERATION_MODES)
        self.part_dim = part_dim
        if mode == 'sim':
            hidden = part_dim // reduction
            self.gate = nn.Sequential(
                nn.Linear(part_dim, hidden, bias=False), nn.LayerNorm(hidden),
                nn.ReLU(True), nn.Linear(hidden, 2 * part_dim))
        elif mode == 'concat':
            self.fuse = nn.Linear(2 * part_dim, part_dim)

    def gates(self, part_queries: Tensor, part_embeddings: Tensor) -> tuple:
        """The two sigmoid gates ``(g_E, g_Q)`` of eq. 3, each (..., d_p)."""
        gates = self.gate(part_embeddings + part_queries).sigmoid()
        return gates[..., :self.part_dim], gates[..., self.part_dim:]

    def forward(self, part_queries: Tensor, part_embeddings: Tensor) -> Tensor:
        """Fuse the previous stage's part queries with the new embeddings.

        Args:
            part_queries (Tensor): Q_P^{s-1}, shape (n, M, d_p).
            part_embeddings (Tensor): E_P^s, shape (n, M, d_p).

        Returns:
            Tensor: Q_P^s, shape (n, M, d_p).
        """
        if self.mode == 'sim':
            gate_e, gate_q = self.gates(part_queries, part_embeddings)
            return gate_e * part_embeddings + gate_q * part_queries
        if self.mode == 'sum':
            return part_embeddings + part_queries
        if self.mode == 'concat':
            return self.fuse(torch.cat([part_embeddings, part_queries], -1))
        return part_embeddings
