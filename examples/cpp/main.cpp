// torchops C++ example: loads TorchScript models saved from Python (a
// detection-style box matcher using ratio_iou, an RNN using the LSTM cell and
// an anchor-free detection head using the box IoU family), runs forward and
// backward, then the same models from 8 threads at once, and the AOTInductor
// packages of all three. No Python in this process.
//
//   torchops_demo MODEL_DIR RESULTS_FILE [cpu|cuda]
//
// MODEL_DIR is written by save_models.py. RESULTS_FILE gets every output and
// gradient (torch::pickle_save; torch.load reads it in Python).
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using Results = std::map<std::string, at::Tensor>;

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "cannot open ", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

at::Tensor parameter(const torch::jit::Module& module, const std::string& name) {
  for (const auto& p : module.named_parameters()) {
    if (p.name == name) {
      return p.value;
    }
  }
  TORCH_CHECK(false, "the model has no parameter ", name);
}

// loss = mean(1 - IoU) of refined boxes; gradients of the loss w.r.t. the
// predicted boxes and the refining layer's weight. torch::autograd::grad (not
// backward) so that concurrent threads do not accumulate into shared .grad.
Results run_box_matcher(torch::jit::Module& model, const at::Tensor& pred_in, const at::Tensor& target) {
  auto pred = pred_in.clone().requires_grad_(true);
  auto outputs = model.forward({pred, target}).toTuple();
  auto loss = outputs->elements()[0].toTensor();
  auto iou = outputs->elements()[1].toTensor();
  auto weight = parameter(model, "refine.weight");
  auto grads = torch::autograd::grad({loss}, {pred, weight});
  return {{"box_matcher.loss", loss.detach()},
          {"box_matcher.iou", iou.detach()},
          {"box_matcher.grad_pred", grads[0]},
          {"box_matcher.grad_refine_weight", grads[1]}};
}

// out = head(last hidden state); loss = sum(out^2); gradients w.r.t. the
// sequence and the cell's input weights.
Results run_sequence_model(torch::jit::Module& model, const at::Tensor& sequence_in) {
  auto sequence = sequence_in.clone().requires_grad_(true);
  auto out = model.forward({sequence}).toTensor();
  auto loss = out.square().sum();
  auto weight = parameter(model, "cell.weight_ih");
  auto grads = torch::autograd::grad({loss}, {sequence, weight});
  return {{"sequence_model.out", out.detach()},
          {"sequence_model.grad_sequence", grads[0]},
          {"sequence_model.grad_weight_ih", grads[1]}};
}

// loss = CIoU loss of matched boxes + objectness; gradients of the loss w.r.t.
// the features and the head's convolution weight.
Results run_detection_head(torch::jit::Module& model, const at::Tensor& features_in, const at::Tensor& gt_boxes) {
  auto features = features_in.clone().requires_grad_(true);
  auto outputs = model.forward({features, gt_boxes}).toTuple();
  auto loss = outputs->elements()[0].toTensor();
  auto cost = outputs->elements()[1].toTensor();
  auto weight = parameter(model, "conv.weight");
  auto grads = torch::autograd::grad({loss}, {features, weight});
  return {{"detection_head.loss", loss.detach()},
          {"detection_head.cost", cost.detach()},
          {"detection_head.grad_features", grads[0]},
          {"detection_head.grad_conv_weight", grads[1]}};
}

bool same_bits(const Results& a, const Results& b) {
  for (const auto& [name, tensor] : a) {
    const auto& other = b.at(name);
    if (!tensor.equal(other)) {
      std::printf("  %s differs\n", name.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR RESULTS_FILE [cpu|cuda]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string results_path = argv[2];
  const c10::Device device(argc > 3 ? argv[3] : "cpu");
  try {
    // the ops are there because the op library is linked in
    for (const char* op : {"super_iou::ratio_iou", "super_lstm::lstm_cell", "super_iou::complete_box_iou_loss"}) {
      TORCH_CHECK(c10::Dispatcher::singleton().findSchema({op, ""}).has_value(),
                  "the torchops op library is not loaded: ", op, " is missing");
    }
    auto inputs = torch::jit::pickle_load(read_file(dir + "/inputs.pt")).toGenericDict();
    auto input = [&](const char* name) { return inputs.at(name).toTensor().to(device); };
    const auto pred = input("pred"), target = input("target"), sequence = input("sequence");
    const auto features = input("features"), gt_boxes = input("gt_boxes");
    const std::map<std::string, std::vector<at::Tensor>> model_inputs = {
        {"box_matcher", {pred, target}}, {"sequence_model", {sequence}}, {"detection_head", {features, gt_boxes}}};

    auto box_matcher = torch::jit::load(dir + "/box_matcher.pt", device);
    auto sequence_model = torch::jit::load(dir + "/sequence_model.pt", device);
    auto detection_head = torch::jit::load(dir + "/detection_head.pt", device);
    auto run_all = [&] {
      Results results = run_box_matcher(box_matcher, pred, target);
      results.merge(run_sequence_model(sequence_model, sequence));
      results.merge(run_detection_head(detection_head, features, gt_boxes));
      return results;
    };
    Results results = run_all();
    std::printf("box_matcher loss %.9g\n", results["box_matcher.loss"].item<double>());
    std::printf("sequence_model out[0][0] %.9g\n", results["sequence_model.out"][0][0].item<double>());
    std::printf("detection_head loss %.9g\n", results["detection_head.loss"].item<double>());

    // No GIL: 8 threads run the models, forward and backward, at once.
    constexpr int kThreads = 8, kRepeats = 10;
    std::atomic<int> mismatches{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        try {
          for (int r = 0; r < kRepeats; ++r) {
            mismatches += same_bits(results, run_all()) ? 0 : 1;
          }
        } catch (const std::exception& e) {
          std::printf("thread failed: %s\n", e.what());
          ++failures;
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    std::printf("threads %d x %d runs: %d mismatches, %d failures\n", kThreads, kRepeats,
                mismatches.load(), failures.load());

    // AOTInductor packages (forward only), when save_models.py made them.
    for (const auto& [name, args] : model_inputs) {
      const std::string package = dir + "/" + name + ".pt2";
      if (!std::ifstream(package)) {
        continue;
      }
      torch::inductor::AOTIModelPackageLoader loader(package);
      const auto outputs = loader.run(args);
      for (size_t i = 0; i < outputs.size(); ++i) {
        results[name + ".aoti." + std::to_string(i)] = outputs[i];
      }
      std::printf("%s AOTInductor package: %zu outputs\n", name.c_str(), outputs.size());
    }

    c10::Dict<std::string, at::Tensor> saved;
    for (const auto& [name, tensor] : results) {
      saved.insert(name, tensor.cpu());
    }
    const auto bytes = torch::jit::pickle_save(saved);
    std::ofstream(results_path, std::ios::binary).write(bytes.data(), bytes.size());
    return mismatches.load() == 0 && failures.load() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
