// launch.h: run one kernel instantiation over a 1-D launch grid on the host,
// and describe its parameter list (tests only; include after shim.h and the
// kernel sources).
//
// Arguments arrive as CUDA's kernelParams do (cuLaunchKernel): an array of
// pointers, one per parameter, each to the bytes of that argument. The
// parameter types come from the kernel's own function type, so the bytes are
// read exactly as the compiled kernel declares them.
#ifndef NGFF_HOST_LAUNCH_H
#define NGFF_HOST_LAUNCH_H

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace ngff_host {

// Itanium-ABI codes of the parameter types (what NVRTC's mangled names use):
// h a t s j i y x f d for the builtins, P pointer, K const.
template <typename T> struct code;
template <> struct code<unsigned char> { static std::string get() { return "h"; } };
template <> struct code<signed char> { static std::string get() { return "a"; } };
template <> struct code<unsigned short> { static std::string get() { return "t"; } };
template <> struct code<short> { static std::string get() { return "s"; } };
template <> struct code<unsigned int> { static std::string get() { return "j"; } };
template <> struct code<int> { static std::string get() { return "i"; } };
template <> struct code<unsigned long long> { static std::string get() { return "y"; } };
template <> struct code<long long> { static std::string get() { return "x"; } };
template <> struct code<float> { static std::string get() { return "f"; } };
template <> struct code<double> { static std::string get() { return "d"; } };
template <typename T> struct code<const T> {
    static std::string get() { return "K" + code<T>::get(); }
};
template <typename T> struct code<T*> {
    static std::string get() { return "P" + code<T>::get(); }
};

template <typename... P>
const char* signature(void (*)(P...)) {
    static const std::string sig = [] {
        std::string s;
        ((s += code<P>::get() + ","), ...);
        if (!s.empty()) s.pop_back();
        return s;
    }();
    return sig.c_str();
}

template <typename... P, std::size_t... I>
void call(void (*kernel)(P...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<P>*>(args[I])...);
}

// Every (block, thread) of a grid x block launch, in turn.
template <typename... P>
void run(void (*kernel)(P...), unsigned int grid, unsigned int block, void** args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned int b = 0; b < grid; ++b) {
        for (unsigned int t = 0; t < block; ++t) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            call(kernel, args, std::index_sequence_for<P...>{});
        }
    }
}

struct entry {
    const char* name;
    const char* (*signature)();
    void (*launch)(unsigned int, unsigned int, void**);
};

}  // namespace ngff_host

#define NGFF_HOST_ENTRY(NAME, ...)                                                      \
    {NAME, [] { return ngff_host::signature(&__VA_ARGS__); },                            \
     [](unsigned int g, unsigned int b, void** a) { ngff_host::run(&__VA_ARGS__, g, b, a); }}

#endif  // NGFF_HOST_LAUNCH_H
