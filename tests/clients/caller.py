"""A caller of the client openapi-python-client generated from the live document (run by
test_python_client.py with the generator's own interpreter: argv[1] is the server URL)."""

import json
import sys

from comfygen_client import Client
from comfygen_client.api.sd3_5_medium import sd35_medium_txt2img, validate_sd35_medium_txt2img
from comfygen_client.api.system import health
from comfygen_client.api.test import test_invert, validate_test_invert
from comfygen_client.models import (
    DryRunResponse,
    ErrorBody,
    Sd35MediumTxt2ImgInput,
    Sd35MediumTxt2ImgInputSamplerName,
    Sd35MediumTxt2ImgRequest,
    TestInvertInput,
    TestInvertRequest,
    WorkflowResponse,
)

client = Client(base_url=sys.argv[1], timeout=60)
assert health.sync_detailed(client=client).status_code == 200

# The built-in SD3.5 workflow: typed input (the sampler is an enum from the live ComfyUI); the
# test ComfyUI has no SD3.5 model files, so the answer is a typed 424 naming them.
request = Sd35MediumTxt2ImgRequest(input_=Sd35MediumTxt2ImgInput(
    prompt="a leafy green spaceship", steps=2, width=256, height=256,
    sampler_name=Sd35MediumTxt2ImgInputSamplerName.EULER))
answer = sd35_medium_txt2img.sync_detailed(client=client, body=request)
assert answer.status_code == 424, answer.content
assert isinstance(answer.parsed, ErrorBody) and answer.parsed.type_ == "missing_model"
missing = {m["file"] for m in answer.parsed.additional_properties["missing_models"]}
assert "sd3.5_medium.safetensors" in missing, missing
dry = validate_sd35_medium_txt2img.sync_detailed(client=client, body=request)
assert dry.status_code == 424 and isinstance(dry.parsed, ErrorBody)

# A model-free workflow end to end: a typed WorkflowResponse with the image.
result = test_invert.sync(client=client, body=TestInvertRequest(
    id="typed-client", input_=TestInvertInput(color=0x102030, size=4)))
assert isinstance(result, WorkflowResponse), result
assert result.id == "typed-client" and len(result.images) == 1
checked = validate_test_invert.sync(client=client, body=TestInvertRequest(
    input_=TestInvertInput(size=4)))
assert isinstance(checked, DryRunResponse) and checked.valid, checked
assert isinstance(checked.input_["seed"], int)
print(json.dumps({"missing": sorted(missing), "image": result.images[0]}))
