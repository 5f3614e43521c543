"""The 8 fixed partial sums of ``kernels.reduce`` as explicit 8-lane vector code.

``reduce.dot``'s order keeps LANES = 8 partial sums ``s_j`` over ``i = j mod 8``, each term
fused into its sum (``fma(x_i, y_i, s_j)``). Written as eight scalars, Numba compiles them to
scalar FMAs on every ISA: Numba runs LLVM without the SLP vectoriser, and the loop vectoriser
cannot vectorise a reduction without ``reassoc``. But the eight sums are exactly one vector
of 8 doubles, and a vector FMA rounds each lane as the scalar FMA does, so the functions here
build that loop directly in LLVM IR, with ``<8 x double>`` values (one zmm register on
AVX-512, two ymm on AVX2): the instructions of the scalar loop, lane for lane, with the same
fast-math flags (``jit.ORDERED_FASTMATH``: no ``reassoc``) and the FMAs that the scalar code
compiles to written out as ``llvm.fma`` (the backend would not always fuse the same product
of a vector sum of two products), so every partial sum keeps its bits.

Like ``reduce.py``'s bitwise promise this assumes a target with FMA (x86-64-v3 and up): on one
without, ``llvm.fma`` is a library call per lane (FMA-node results, slowly), while scalar
code there rounds each product separately.

Each function covers the ``full = n - n % 8`` leading terms (``full`` a multiple of 8, the
caller's business) and returns the 8 partial sums (or 3 x 8) as a tuple; the caller combines
them and adds the tail in ``reduce.dot``'s order. Arrays must be C-contiguous float64.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .jit import ORDERED_FASTMATH

__all__ = ["is_c_f64", "dot_lanes", "relu_gram1_lanes", "relu_gram2_lanes", "fma"]

_LANES = 8
_FLAGS = tuple(sorted(ORDERED_FASTMATH))
_F64 = ir.DoubleType()
_VEC = ir.VectorType(_F64, _LANES)
_I64 = ir.IntType(64)


def is_c_f64(a):
    """Whether Numba type ``a`` is an array these functions take: 1-d, C-contiguous,
    aligned float64 (read-only or not)."""
    return (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.aligned
            and a.dtype == types.float64)


def _splat(builder, x):
    # <8 x double> with every lane x
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), _LANES), [0] * _LANES))


def _data(context, builder, aty, aval):
    return context.make_array(aty)(context, builder, aval).data


def _lane_loop(builder, full, n_acc, body):
    """for i in range(0, full, 8): accs = body(i, accs), from n_acc zero vectors; returns the
    final accumulators."""
    pre = builder.block
    header = builder.append_basic_block("lanes.header")
    loop = builder.append_basic_block("lanes.body")
    done = builder.append_basic_block("lanes.done")
    builder.branch(header)
    builder.position_at_end(header)
    i = builder.phi(_I64, "lanes.i")
    accs = [builder.phi(_VEC, f"lanes.acc{j}") for j in range(n_acc)]
    i.add_incoming(ir.Constant(_I64, 0), pre)
    for a in accs:
        a.add_incoming(ir.Constant(_VEC, None), pre)      # +0.0 in every lane
    builder.cbranch(builder.icmp_signed("<", i, full), loop, done)
    builder.position_at_end(loop)
    new = body(i, accs)
    nxt = builder.add(i, ir.Constant(_I64, _LANES))
    tail = builder.block
    i.add_incoming(nxt, tail)
    for a, b in zip(accs, new):
        a.add_incoming(b, tail)
    builder.branch(header)
    builder.position_at_end(done)
    return accs


def _load8(builder, ptr, i):
    # x[i .. i + 7] as one vector (align 8: rows need not be 64-byte aligned)
    p = builder.bitcast(builder.gep(ptr, [i]), _VEC.as_pointer())
    return builder.load(p, align=8)


def _relu(builder, z):
    # activations.relu: 0.0 if z < 0.0 else z (NaN propagates)
    neg = builder.fcmp_ordered("<", z, ir.Constant(_VEC, None), flags=_FLAGS)
    return builder.select(neg, ir.Constant(_VEC, None), z)


def _fma(builder, a, b, c):
    # fma(a, b, c) per lane, explicitly: what the scalar code's contracted a * b + c compiles
    # to. Left to the backend, the vector DAG may fuse the other product of a sum of two
    # products (seen on Haswell for markov's z1), so every FMA here is spelled out.
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                        "llvm.fma.v8f64")
    return builder.call(fn, [a, b, c])


def _fma_acc(builder, acc, a, b):
    # s_j += a * b: fma(a, b, s_j)
    return _fma(builder, a, b, acc)


def _tuple_of_lanes(context, builder, tupty, vecs):
    vals = [builder.extract_element(v, ir.Constant(ir.IntType(32), j))
            for v in vecs for j in range(_LANES)]
    return context.make_tuple(builder, tupty, vals)


@intrinsic
def dot_lanes(typingctx, x, y, full):
    """(s_0, ..., s_7): s_j = sum of x_i y_i over i < full, i = j mod 8, in increasing i."""
    if not (is_c_f64(x) and is_c_f64(y) and isinstance(full, types.Integer)):
        return None
    tupty = types.UniTuple(types.float64, _LANES)

    def codegen(context, builder, sig, args):
        px = _data(context, builder, sig.args[0], args[0])
        py = _data(context, builder, sig.args[1], args[1])
        full_ = context.cast(builder, args[2], sig.args[2], types.int64)

        def body(i, accs):
            return [_fma_acc(builder, accs[0], _load8(builder, px, i), _load8(builder, py, i))]

        return _tuple_of_lanes(context, builder, tupty, _lane_loop(builder, full_, 1, body))

    return tupty(x, y, full), codegen


@intrinsic
def relu_gram1_lanes(typingctx, x, full, c00):
    """(s_0, ..., s_7): s_j = sum of a_i a_i, a_i = relu(x_i c00), over i < full, i = j mod 8."""
    if not (is_c_f64(x) and isinstance(full, types.Integer) and c00 == types.float64):
        return None
    tupty = types.UniTuple(types.float64, _LANES)

    def codegen(context, builder, sig, args):
        px = _data(context, builder, sig.args[0], args[0])
        full_ = context.cast(builder, args[1], sig.args[1], types.int64)
        c = _splat(builder, args[2])

        def body(i, accs):
            a = _relu(builder, builder.fmul(c, _load8(builder, px, i), flags=_FLAGS))
            return [_fma_acc(builder, accs[0], a, a)]

        return _tuple_of_lanes(context, builder, tupty, _lane_loop(builder, full_, 1, body))

    return tupty(x, full, c00), codegen


@intrinsic
def relu_gram2_lanes(typingctx, x, y, full, c00, c10, c11):
    """(p_0..p_7, q_0..q_7, r_0..r_7): the partial sums of a a, a b, b b over i < full,
    i = j mod 8, with a = relu(c00 x_i), b = relu(z1), z1 = fma(c10, x_i, c11 y_i) if c10 != 0
    else c11 y_i (markov's ``_z1`` as compiled: both computed, then selected)."""
    if not (is_c_f64(x) and is_c_f64(y) and isinstance(full, types.Integer)
            and c00 == types.float64 and c10 == types.float64 and c11 == types.float64):
        return None
    tupty = types.UniTuple(types.float64, 3 * _LANES)

    def codegen(context, builder, sig, args):
        px = _data(context, builder, sig.args[0], args[0])
        py = _data(context, builder, sig.args[1], args[1])
        full_ = context.cast(builder, args[2], sig.args[2], types.int64)
        c00_, c10_, c11_ = (_splat(builder, v) for v in args[3:6])
        use_c10 = builder.fcmp_unordered("!=", args[4], ir.Constant(_F64, 0.0))

        def body(i, accs):
            vx = _load8(builder, px, i)
            vy = _load8(builder, py, i)
            a = _relu(builder, builder.fmul(c00_, vx, flags=_FLAGS))
            t = builder.fmul(c11_, vy, flags=_FLAGS)
            t2 = _fma(builder, c10_, vx, t)            # fma(c10, x, c11 y), as the scalar code
            b = _relu(builder, builder.select(use_c10, t2, t))
            return [_fma_acc(builder, accs[0], a, a), _fma_acc(builder, accs[1], a, b),
                    _fma_acc(builder, accs[2], b, b)]

        return _tuple_of_lanes(context, builder, tupty, _lane_loop(builder, full_, 3, body))

    return tupty(x, y, full, c00, c10, c11), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """fma(a, b, c) = a * b + c rounded once (float64, ``llvm.fma.f64``), for the few steps
    whose rounding must not depend on whether the backend contracts a product into a sum
    (that choice changes with the surrounding code; spelled out it cannot)."""
    if not all(isinstance(t, types.Float) for t in (a, b, c)):
        return None
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_F64, [_F64] * 3),
                                            "llvm.fma.f64")
        return builder.call(fn, args)
    return sig, codegen
