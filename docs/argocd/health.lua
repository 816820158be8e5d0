-- Argo CD health check for jobqueue.dev Tenant and JobQueue objects.
-- Register it under resource.customizations.health.jobqueue.dev_Tenant and
-- resource.customizations.health.jobqueue.dev_JobQueue in argocd-cm.
-- Ready=True for the object's current generation is Healthy, Ready=False is
-- Degraded, and anything else (no status yet, or a status the operator wrote
-- for an older generation) is Progressing.
local hs = {status = "Progressing", message = "waiting for the operator to reconcile"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation then
      hs.message = "the operator has not seen generation " .. tostring(generation) .. " yet"
      return hs
    end
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.status == "False" then
      hs.status = "Degraded"
    end
    hs.message = (c.reason or "") .. ": " .. (c.message or "")
    return hs
  end
end
return hs
