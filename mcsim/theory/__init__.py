"""Predictions of the 1/n expansion (theory notes section 5).

    from mcsim.theory import predict, find_criticality
    P = predict("tanh", inputs, widths=[64] * 4, C_W=1.0, C_b=0.0)
    P.layer(3).kernel, P.layer(3).correction, P.layer(3).vertex, P.layer(3).metric
    P.layer(3).vertex_correction, P.layer(3).vertex_nlo, P.layer(3).six_point

Modules:
    quadrature   Gaussian quadrature rules (piecewise Gauss-Legendre split at kinks)
    gaussian     <f(z)>_K for activations, closed forms, derivatives in K (Price's theorem)
    recursions   per-layer K, V, G^{1} (1/n metric correction), NTK mean (the core)
    full         predict / predict_config: the core plus NTK fluctuations, dNTK, laws
    ntk          NTK mean to 1/n (H + H1/n), fluctuations A, B, D, F, per-layer
                 contributions to H^(L), equivalence-principle learning rates
    dntk         the dNTK-preactivation correlations P, Q at leading order (book ch. 11)
    ntk_gaussian the mixed Gaussian moments of sigma and sigma' the NTK recursions need
    gaussian_higher  six-point function, derivatives of the four-point function (Hermite)
    six_point    the six-point vertex at leading order
    vertex_nlo   V1, the 1/n correction of the four-point vertex (and the driver of both)
    criticality  chi_parallel, chi_perpendicular, fixed points, critical (C_b, C_W), class
    store        prediction files (kind = "prediction") and text output
"""
from .criticality import (chi_parallel, chi_perpendicular, find_criticality, fixed_points,
                          kernel_map, summary)
from .gaussian import derivative_two_point, four_point, two_point, two_point_jacobian
from .ntk import (NTKContributions, NTKLayerPrediction, NTKPrediction,
                  equivalence_learning_rates, ntk_contributions, predict_ntk,
                  predict_ntk_config)
from .dntk import DNTKLayerPrediction, DNTKPrediction, predict_dntk
from .full import predict, predict_config
from .recursions import LayerPrediction, Prediction

__all__ = ["predict", "predict_config", "Prediction", "LayerPrediction", "two_point",
           "four_point", "derivative_two_point", "two_point_jacobian", "chi_parallel",
           "chi_perpendicular", "fixed_points", "kernel_map", "find_criticality", "summary",
           "predict_ntk", "predict_ntk_config", "NTKPrediction", "NTKLayerPrediction",
           "NTKContributions", "ntk_contributions", "equivalence_learning_rates",
           "predict_dntk", "DNTKPrediction", "DNTKLayerPrediction"]
