/* libFuzzer target: pcf_onnx (targets.h says what the input is). */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return pcf_onnx(data, size);
}
