// The LSTM's and the GRU's whole sequences on a CPU: the loop over time in C++, one BLAS product a step
// (oneDNN or ATen's BLAS, see Product) and the step's element-wise part as one plain loop over the
// batch's units.
//
// The equations, the buffers and the signatures are those of the Triton kernels (longrnn/kernels/lstm.py,
// longrnn/kernels/gru.py, whose docstrings write out the forward and the hand-written backward); the
// Python wrappers in longrnn/kernels/cpu.py give both the same functions, so one autograd function
// serves both engines. Gates: 0 sigmoid, 1 fast σ(sinh z) (Ohno et al., AAAI 2023; z clamped to ±20,
// where σ(sinh z) is exactly 0 or 1), 2 normalized softsign, 3 refine (Gu et al., ICML 2020).
// Built on first use by torch.utils.cpp_extension; tested equal to the step loop (tests/test_cpu_kernels.py).

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <tuple>
#include <type_traits>

namespace {

constexpr double kFastGateClamp = 20.0;  // longrnn.functional.gates.FAST_GATE_CLAMP

// σ(z) with z kept where exp(-z) is finite: under -ffast-math (cpu.py's flags) an infinite exp(-z) is
// not guaranteed to give 1/(1 + inf) = 0 (it gave NaN). σ(±88) is within 1e-38 of 0 and 1 in float32, as
// σ(±708) is in float64, so no value moves by more than that.
template <typename T>
inline T sigmoid(T z) {
  constexpr T limit = std::is_same_v<T, float> ? T(88) : T(708);
  z = std::min(std::max(z, -limit), limit);
  return T(1) / (T(1) + std::exp(-z));
}

// (g, ∂g/∂z, ∂g/∂z_refine) of the keep gate: the single-input gates ignore z_refine. GATE is a template
// argument so that the loops below have no branch and the compiler vectorizes them (with glibc's vector
// exp, tanh, sinh and cosh).
template <int GATE, typename T>
inline void keep_gate(T z, T z_refine, T& g, T& dg, T& dg_refine) {
  dg_refine = T(0);
  if constexpr (GATE == 0) {
    g = sigmoid(z);
    dg = g * (T(1) - g);
  } else if constexpr (GATE == 1) {
    T zc = std::min(std::max(z, T(-kFastGateClamp)), T(kFastGateClamp));
    g = sigmoid(std::sinh(zc));
    dg = g * (T(1) - g) * std::cosh(zc);
  } else if constexpr (GATE == 2) {
    T d = T(1) / (T(1) + std::abs(z));
    g = T(0.5) * (T(1) + z * d);
    dg = T(0.5) * d * d;
  } else {
    T f = sigmoid(z), r = sigmoid(z_refine);
    g = r * (T(1) - (T(1) - f) * (T(1) - f)) + (T(1) - r) * f * f;
    dg = (T(2) * r * (T(1) - f) + T(2) * (T(1) - r) * f) * f * (T(1) - f);
    dg_refine = T(2) * f * (T(1) - f) * r * (T(1) - r);
  }
}

// Calls fn.template operator()<GATE>() with the gate number as a compile-time constant.
template <typename F>
inline void with_gate(int64_t gate, const F& fn) {
  switch (gate) {
    case 0: fn(std::integral_constant<int, 0>{}); break;
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    default: TORCH_CHECK(false, "unknown gate number ", gate, "; allowed: 0 to 3");
  }
}

// y = x Wᵀ for x (B, K) and W (N, K): through oneDNN's linear with W packed once per sequence when `packed`
// holds it (float32 where torch has oneDNN: cpu.py packs it), else through ATen's BLAS product. oneDNN's
// product was 1.5x faster than MKL's at (32, 128) x (128, 512) on one thread of the AMD EPYC these
// benchmarks ran on (MKL dispatches slower code on non-Intel CPUs).
struct Product {
  at::Tensor weight;
  std::optional<at::Tensor> packed;

  at::Tensor operator()(const at::Tensor& x) const {
    if (!packed) return at::mm(x, weight.t());
    static const c10::OperatorHandle op =
        c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
    std::vector<c10::IValue> stack{x, *packed, c10::IValue(), std::string("none"),
                                   c10::List<std::optional<at::Scalar>>(), c10::IValue()};
    op.callBoxed(&stack);
    return stack[0].toTensor();
  }
};

// Large buffers (the pre-activations, the states and their gradients: tens of MB at T = 1000) are kept
// for the next sequence of the same shape: fresh ones are mapped from the system and fault on every
// page's first touch, which cost these loops a fifth of their time (docs/benchmarks.md). A kept buffer
// is handed out again only when the pool holds its one reference: no tensor, view or saved variable
// shares its storage. The pool's own tensor never reaches Python (each caller gets another tensor on
// its storage): a Python object, once made, would hold a reference of its own for as long as the pool
// does. At most kPoolSize are kept; release_buffers() drops the ones not in use. The pool is never
// destroyed (no tensor freed at exit after torch's allocator).
constexpr size_t kPoolSize = 8;
constexpr int64_t kPoolMinBytes = 1 << 20;
std::mutex pool_mutex;
std::vector<at::Tensor>& pool = *new std::vector<at::Tensor>();

inline bool in_use(const at::Tensor& kept) { return kept.use_count() > 1 || kept.storage().use_count() > 1; }

// Drops the kept buffers nothing else holds (pool_mutex held).
inline void drop_free() {
  pool.erase(std::remove_if(pool.begin(), pool.end(), [](const at::Tensor& kept) { return !in_use(kept); }),
             pool.end());
}

// A tensor of its own on the kept one's storage (not a view of it, whose _base would bring the kept one
// to Python).
inline at::Tensor handed_out(const at::Tensor& kept) {
  return at::empty({0}, kept.options()).set_(kept.storage(), kept.storage_offset(), kept.sizes(), kept.strides());
}

at::Tensor buffer(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t bytes = options.dtype().itemsize();
  for (int64_t n : sizes) bytes *= n;
  if (bytes < kPoolMinBytes) return at::empty(sizes, options);
  std::lock_guard<std::mutex> lock(pool_mutex);
  for (const at::Tensor& kept : pool) {
    if (!in_use(kept) && kept.sizes() == sizes && kept.dtype() == options.dtype()) return handed_out(kept);
  }
  drop_free();  // none free of this shape: free ones of other shapes go first (a new batch size or length)
  at::Tensor fresh = at::empty(sizes, options);
  if (pool.size() < kPoolSize) pool.push_back(fresh);
  return handed_out(fresh);
}

void release_buffers() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  drop_free();
}

// Runs body(b) for every sequence b of the batch, split over ATen's threads.
template <typename F>
inline void for_each_sequence(int64_t B, int64_t H, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1));
  at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) body(b);
  });
}

// The element-wise part of a step for one sequence's H units: plain loops over restrict pointers that
// the compiler vectorizes.

// a = x + rec (x_proj_t and h_{t-1} W_hhᵀ) is stored for the backward.
template <int GATE, typename T>
void lstm_forward_row(const T* __restrict__ x, const T* __restrict__ rec, T* __restrict__ a,
                      const T* __restrict__ c_prev, T* __restrict__ c_next, T* __restrict__ h_next,
                      int64_t H) noexcept {
#pragma GCC ivdep
  for (int64_t j = 0; j < 4 * H; ++j) a[j] = x[j] + rec[j];
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    T f, df, dfr;
    keep_gate<GATE, T>(a[H + j], a[j], f, df, dfr);
    T i = GATE == 3 ? T(1) - f : sigmoid(a[j]);  // refine: block i holds the refine gate's input
    T c = f * c_prev[j] + i * std::tanh(a[2 * H + j]);
    c_next[j] = c;
    h_next[j] = sigmoid(a[3 * H + j]) * std::tanh(c);
  }
}

// dc (read and overwritten with dc_{t-1}), the step's da out.
template <int GATE, typename T>
void lstm_backward_row(const T* __restrict__ a, const T* __restrict__ c_prev, const T* __restrict__ c_now,
                       const T* __restrict__ dh, const T* __restrict__ gout, T* __restrict__ dc,
                       T* __restrict__ da, int64_t H) noexcept {
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    T f, df, dfr;
    keep_gate<GATE, T>(a[H + j], a[j], f, df, dfr);
    T g = std::tanh(a[2 * H + j]), o = sigmoid(a[3 * H + j]), tc = std::tanh(c_now[j]);
    T dh_j = dh[j] + gout[j];
    T dc_j = dc[j] + dh_j * o * (T(1) - tc * tc);
    T i;
    if constexpr (GATE == 3) {  // i = 1 - f: ∂L/∂f = dc (c_{t-1} - g), through both of f's inputs
      i = T(1) - f;
      T df_total = dc_j * (c_prev[j] - g);
      da[j] = df_total * dfr;
      da[H + j] = df_total * df;
    } else {
      i = sigmoid(a[j]);
      da[j] = dc_j * g * i * (T(1) - i);
      da[H + j] = dc_j * c_prev[j] * df;
    }
    da[2 * H + j] = dc_j * i * (T(1) - g * g);
    da[3 * H + j] = dh_j * tc * o * (T(1) - o);
    dc[j] = dc_j * f;
  }
}

template <int GATE, typename T>
void gru_forward_row(const T* __restrict__ x, const T* __restrict__ rec, const T* __restrict__ bias_hn,
                     const T* __restrict__ h_prev, T* __restrict__ h_next, T* __restrict__ saved,
                     int64_t H) noexcept {
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    T a_r = x[j] + rec[j], a_z = x[H + j] + rec[H + j], m = rec[2 * H + j] + bias_hn[j];
    T a_q = GATE == 3 ? x[3 * H + j] + rec[3 * H + j] : a_z;
    T a_n = x[2 * H + j] + sigmoid(a_r) * m;
    T z, dz, dzq;
    keep_gate<GATE, T>(a_z, a_q, z, dz, dzq);
    h_next[j] = (T(1) - z) * std::tanh(a_n) + z * h_prev[j];
    saved[j] = a_r;
    saved[H + j] = a_z;
    saved[2 * H + j] = a_n;
    saved[3 * H + j] = m;
    if constexpr (GATE == 3) saved[4 * H + j] = a_q;
  }
}

// direct receives dh z, the gradient's path that skips the product.
template <int GATE, typename T>
void gru_backward_row(const T* __restrict__ saved, const T* __restrict__ h_prev, const T* __restrict__ dh,
                      const T* __restrict__ gout, T* __restrict__ direct, T* __restrict__ dx,
                      T* __restrict__ dg, int64_t H) noexcept {
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    T r = sigmoid(saved[j]), n = std::tanh(saved[2 * H + j]), m = saved[3 * H + j];
    T z, dz, dzq;
    keep_gate<GATE, T>(saved[H + j], GATE == 3 ? saved[4 * H + j] : saved[H + j], z, dz, dzq);
    T dh_j = dh[j] + gout[j];
    T da_n = dh_j * (T(1) - z) * (T(1) - n * n);
    T da_r = da_n * m * r * (T(1) - r);
    T dz_total = dh_j * (h_prev[j] - n);  // ∂L/∂z
    dx[j] = da_r;
    dg[j] = da_r;
    dx[H + j] = dz_total * dz;
    dg[H + j] = dz_total * dz;
    dx[2 * H + j] = da_n;
    dg[2 * H + j] = da_n * r;
    if constexpr (GATE == 3) {
      dx[3 * H + j] = dz_total * dzq;
      dg[3 * H + j] = dz_total * dzq;
    }
    direct[j] = dh_j * z;
  }
}

// The time loops: one BLAS product a step (ATen), the element-wise part row by row.

// a and cs hold every step (for the backward), or, without it, one step's pre-activations and two cell
// states used in turn: row(t) picks the row of step t in either.
inline int64_t row(const at::Tensor& buffer, int64_t t) { return t % buffer.size(0); }

template <int GATE, typename T>
void lstm_forward_steps(const at::Tensor& x_proj, const Product& recurrent, at::Tensor& hs, at::Tensor& cs,
                        at::Tensor& a) {
  const int64_t T_ = x_proj.size(0), B = x_proj.size(1), H = hs.size(2);
  for (int64_t t = 0; t < T_; ++t) {
    const at::Tensor rec = recurrent(hs[t]);  // h_{t-1} W_hhᵀ
    const T* xp = x_proj[t].data_ptr<T>();
    const T* rp = rec.data_ptr<T>();
    T* ap = a[row(a, t)].data_ptr<T>();
    const T* c_prev = cs[row(cs, t)].data_ptr<T>();
    T* c_next = cs[row(cs, t + 1)].data_ptr<T>();
    T* h_next = hs[t + 1].data_ptr<T>();
    for_each_sequence(B, H, [&](int64_t b) {
      lstm_forward_row<GATE, T>(xp + b * 4 * H, rp + b * 4 * H, ap + b * 4 * H, c_prev + b * H, c_next + b * H,
                                h_next + b * H, H);
    });
  }
}

template <int GATE, typename T>
void lstm_backward_steps(const at::Tensor& a, const at::Tensor& cs, const Product& transposed,
                         const at::Tensor& grad_outputs, at::Tensor& dh, at::Tensor& dc, at::Tensor& da) {
  const int64_t T_ = a.size(0), B = a.size(1), H = dh.size(1);
  T* dcp = dc.data_ptr<T>();
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const T* dhp = dh.data_ptr<T>();
    const T* ap = a[t].data_ptr<T>();
    const T* c_prev = cs[t].data_ptr<T>();
    const T* c_now = cs[t + 1].data_ptr<T>();
    const T* gout = grad_outputs[t].data_ptr<T>();
    at::Tensor da_t = da[t];
    T* dap = da_t.data_ptr<T>();
    for_each_sequence(B, H, [&](int64_t b) {
      lstm_backward_row<GATE, T>(ap + b * 4 * H, c_prev + b * H, c_now + b * H, dhp + b * H, gout + b * H,
                                 dcp + b * H, dap + b * 4 * H, H);
    });
    dh = transposed(da_t);  // dh_{t-1} = da_t W_hh (the output's gradient joins at the next step)
  }
}

template <int GATE, typename T>
void gru_forward_steps(const at::Tensor& x_proj, const Product& recurrent, const at::Tensor& bias_hn,
                       at::Tensor& hs, at::Tensor& saved) {
  const int64_t T_ = x_proj.size(0), B = x_proj.size(1), H = hs.size(2);
  constexpr int64_t NB = GATE == 3 ? 4 : 3;  // gate blocks: r, z, n(, q)
  const T* bn = bias_hn.data_ptr<T>();
  for (int64_t t = 0; t < T_; ++t) {
    const at::Tensor rec = recurrent(hs[t]);  // h_{t-1} W_hhᵀ, blocks r, z, n(, q)
    const T* rp = rec.data_ptr<T>();
    const T* xp = x_proj[t].data_ptr<T>();
    const T* h_prev = hs[t].data_ptr<T>();
    T* h_next = hs[t + 1].data_ptr<T>();
    T* sp = saved[row(saved, t)].data_ptr<T>();
    for_each_sequence(B, H, [&](int64_t b) {
      gru_forward_row<GATE, T>(xp + b * NB * H, rp + b * NB * H, bn, h_prev + b * H, h_next + b * H,
                               sp + b * (NB + 1) * H, H);
    });
  }
}

template <int GATE, typename T>
void gru_backward_steps(const at::Tensor& saved, const at::Tensor& hs, const Product& transposed,
                        const at::Tensor& grad_outputs, at::Tensor& dh, at::Tensor& dx, at::Tensor& dg,
                        at::Tensor& direct) {
  const int64_t T_ = saved.size(0), B = saved.size(1), H = dh.size(1);
  constexpr int64_t NB = GATE == 3 ? 4 : 3;
  T* directp = direct.data_ptr<T>();
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const T* dhp = dh.data_ptr<T>();
    const T* sp = saved[t].data_ptr<T>();
    const T* h_prev = hs[t].data_ptr<T>();
    const T* gout = grad_outputs[t].data_ptr<T>();
    T* dxp = dx[t].data_ptr<T>();
    at::Tensor dg_t = dg[t];
    T* dgp = dg_t.data_ptr<T>();
    for_each_sequence(B, H, [&](int64_t b) {
      gru_backward_row<GATE, T>(sp + b * (NB + 1) * H, h_prev + b * H, dhp + b * H, gout + b * H,
                                directp + b * H, dxp + b * NB * H, dgp + b * NB * H, H);
    });
    dh = transposed(dg_t).add_(direct);  // dh_{t-1} = dh z + [da_r, da_z, dm(, da_q)] W_hh
  }
}

// The functions below take and return what longrnn.kernels.lstm / longrnn.kernels.gru take and return
// (tensors contiguous, float32 or float64, on the CPU; the Python side checks and allocates nothing else),
// and the recurrent weight packed for oneDNN (forward: W_hh; backward: W_hhᵀ) or None (see Product).

// keep: whether a backward follows. Without one, a holds one step and cs two (see row), and the cs
// returned holds the last cell state alone; hs always holds every step (the outputs).
std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                                            const at::Tensor& c0, const at::Tensor& weight_hh,
                                                            int64_t gate, std::optional<at::Tensor> packed,
                                                            bool keep) {
  const int64_t T_ = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  at::Tensor hs = buffer({T_ + 1, B, H}, x_proj.options());
  at::Tensor cs = buffer({keep ? T_ + 1 : 2, B, H}, x_proj.options());
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  at::Tensor a = buffer({keep ? T_ : 1, B, x_proj.size(2)}, x_proj.options());
  const Product recurrent{weight_hh, packed};
  with_gate(gate, [&](auto g) {
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "lstm_forward",
                               [&] { lstm_forward_steps<decltype(g)::value, scalar_t>(x_proj, recurrent, hs, cs, a); });
  });
  if (!keep) cs = cs.narrow(0, row(cs, T_), 1);
  return {hs, cs, a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_backward(const at::Tensor& a, const at::Tensor& cs,
                                                             const at::Tensor& weight_hh,
                                                             const at::Tensor& grad_outputs,
                                                             const at::Tensor& grad_h, const at::Tensor& grad_c,
                                                             int64_t gate, std::optional<at::Tensor> packed) {
  at::Tensor da = buffer(a.sizes(), a.options()), dh = grad_h.clone(), dc = grad_c.clone();
  const Product transposed{weight_hh.t().contiguous(), packed};
  with_gate(gate, [&](auto g) {
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lstm_backward", [&] {
      lstm_backward_steps<decltype(g)::value, scalar_t>(a, cs, transposed, grad_outputs, dh, dc, da);
    });
  });
  return {da, dh, dc};
}

// keep: as lstm_forward's (without it, saved holds one step).
std::tuple<at::Tensor, at::Tensor> gru_forward(const at::Tensor& x_proj, const at::Tensor& h0,
                                               const at::Tensor& weight_hh, const at::Tensor& bias_hn,
                                               int64_t gate, std::optional<at::Tensor> packed, bool keep) {
  const int64_t T_ = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  at::Tensor hs = buffer({T_ + 1, B, H}, x_proj.options());
  hs[0].copy_(h0);
  at::Tensor saved = buffer({keep ? T_ : 1, B, x_proj.size(2) + H}, x_proj.options());
  const Product recurrent{weight_hh, packed};
  with_gate(gate, [&](auto g) {
    AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "gru_forward", [&] {
      gru_forward_steps<decltype(g)::value, scalar_t>(x_proj, recurrent, bias_hn, hs, saved);
    });
  });
  return {hs, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_backward(const at::Tensor& saved, const at::Tensor& hs,
                                                            const at::Tensor& weight_hh,
                                                            const at::Tensor& grad_outputs,
                                                            const at::Tensor& grad_h, int64_t gate,
                                                            std::optional<at::Tensor> packed) {
  const int64_t T_ = saved.size(0), B = saved.size(1), H = hs.size(2), G = weight_hh.size(0);
  at::Tensor dx = buffer({T_, B, G}, saved.options()), dg = buffer({T_, B, G}, saved.options());
  at::Tensor dh = grad_h.clone(), direct = at::empty({B, H}, saved.options());
  const Product transposed{weight_hh.t().contiguous(), packed};
  with_gate(gate, [&](auto g) {
    AT_DISPATCH_FLOATING_TYPES(saved.scalar_type(), "gru_backward", [&] {
      gru_backward_steps<decltype(g)::value, scalar_t>(saved, hs, transposed, grad_outputs, dh, dx, dg, direct);
    });
  });
  return {dx, dg, dh};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM sequence forward: (hs, cs, pre-activations)");
  m.def("lstm_backward", &lstm_backward, "LSTM sequence backward: (dx_proj, dh_0, dc_0)");
  m.def("gru_forward", &gru_forward, "GRU sequence forward: (hs, saved)");
  m.def("gru_backward", &gru_backward, "GRU sequence backward: (dx_proj, dg, dh_0)");
  m.def("release_buffers", &release_buffers, "drop the kept buffers that nothing else holds");
}
